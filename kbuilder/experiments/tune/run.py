"""Running a study: worker loops (in this process or in K spawned processes) and progress lines.

A worker takes one trial at a time until the study has its requested number of counted trials
(see study.py). It first fails the trials of dead workers (stale heartbeats), which queues
their retries; when the remaining places are held by trials still running elsewhere, it waits
for them instead of starting more, so a study never trains more than it was asked to.
"""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import fail_stale_trials

from kbuilder.backend import quiet_tensorflow_startup
from kbuilder.errors import (
    EXIT_INTERRUPTED,
    Interrupted,
    KBuilderError,
    RuntimeFailure,
    UsageError,
    ctrl_c_pressed,
)
from kbuilder.experiments.tune.progress import Progress
from kbuilder.experiments.tune.storage import (
    STORAGE_LOST_EXIT,
    StorageLost,
    is_storage_lost,
    quiet_storage_thread_errors,
    storage_lost,
)
from kbuilder.experiments.tune.study import (
    TuneConfig,
    count_trials,
    open_study,
    search_section,
    train_epochs,
)
from kbuilder.experiments.tune.trial import (
    Interrupted as TrialInterrupted,
)
from kbuilder.experiments.tune.trial import (
    Surplus,
    TrialFailed,
    TrialRunner,
    catch_interrupts,
    quiet_failed_trials,
    stop_requested,
)
from kbuilder.spec import LoadedSpec, load_spec
from kbuilder.spec.search import SearchSpec
from kbuilder.spec.search_check import baseline_values
from kbuilder.train.safe_arrays import available_memory, describe_size

POLL_SECONDS = 1.0
ASK_LOCK = ".ask.lock"  # in the study folder (SQLite): see serialize_ask
STOP_SECONDS = 5.0  # after Ctrl-C, how long workers have to fail their trials before they are ended
INTERRUPTED = (
    "interrupted; the finished trials are kept and the interrupted ones queued again: "
    "run the same command to resume the study"
)

# What an idle worker process holds (Python, TensorFlow, Optuna), measured: about 1 GiB.
WORKER_MEMORY = 1 << 30


def check_workers(workers: int) -> None:
    """At most one worker a core, and as many as the free memory holds at WORKER_MEMORY each."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    free = available_memory()
    bound = max(1, min(cores, free // WORKER_MEMORY))
    if workers > bound:
        raise UsageError(
            f"--workers {workers}: this machine runs at most {bound} (it has {cores} cores and "
            f"{describe_size(free)} of free memory; a worker takes a core and about 1 GB); "
            f"give --workers {bound} or less, and start more workers on other machines with a shared --storage"
        )


def target_of(config: TuneConfig, search: SearchSpec) -> int:
    return config.trials or search.trial_count()


def run_worker(config: TuneConfig, progress: Progress | None = None) -> None:
    """One worker's loop; returns when the study has its trials, raises KeyboardInterrupt after
    Ctrl-C (its running trial failed and queued again). A database that stops answering ends
    it with storage.py's one message."""
    quiet_storage_thread_errors()
    quiet_failed_trials()
    try:
        _worker_loop(config, progress)
    except (KBuilderError, KeyboardInterrupt):
        raise
    except Exception as exc:
        if is_storage_lost(exc):
            raise storage_lost(config.resolved_storage(), config.study_dir, exc) from None
        raise


def _worker_loop(config: TuneConfig, progress: Progress | None) -> None:
    loaded = load_spec(config.spec_file, overrides=config.overrides)
    search = search_section(loaded)
    study = open_study(config, search, loaded.data, epochs=train_epochs(loaded))
    target = target_of(config, search)
    if not config.storage:  # SQLite: this machine's workers take queued trials one at a time
        serialize_ask(study, Path(config.study_dir) / ASK_LOCK)
    shown = progress.poll if progress is not None else None
    runner = TrialRunner(config, loaded, target, sampler=study.sampler, on_progress=shown)
    callbacks: list[Callable] | None = [progress] if progress is not None else None
    while True:
        if stop_requested():
            raise KeyboardInterrupt
        fail_stale_trials(study)
        counts = count_trials(study)
        if counts.done >= target:
            return
        if counts.done + counts.running + counts.waiting >= target and counts.waiting == 0:
            time.sleep(POLL_SECONDS)  # the last places are running elsewhere (or turn stale and are retried)
            continue
        try:
            study.optimize(
                runner, n_trials=1, catch=(TrialFailed, Surplus), callbacks=callbacks, gc_after_trial=True
            )
        except TrialInterrupted:
            raise KeyboardInterrupt from None
        except optuna.exceptions.OptunaError as exc:
            if is_storage_lost(exc):
                raise
            raise RuntimeFailure(f"the study storage failed: {exc}") from None


def serialize_ask(study: optuna.Study, lock_path: Path) -> None:
    """Make the study's `ask` (which Optuna's optimize calls) hold a file lock. SQLite has no row
    locks: two workers popping queued trials at once (the retries of interrupted trials, when the
    same command starts again) can both take one, and then both train it."""
    ask = study.ask

    def locked_ask(*args: Any, **kwargs: Any) -> Any:
        with open(lock_path, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                return ask(*args, **kwargs)
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    study.ask = locked_ask  # type: ignore[method-assign]


def _worker_main(config: TuneConfig, listening: Any) -> None:
    """Entry point of a spawned worker process (exit code 0, or the error's code). It starts with
    Ctrl-C ignored (see _start_workers), takes it from here on and says so (`listening`)."""
    catch_interrupts()
    listening.value = 1
    quiet_tensorflow_startup()  # as the command does: TensorFlow's start-up chatter stays out of the output
    try:
        run_worker(config)
    except KeyboardInterrupt:
        # The trial is failed and queued again in the storage: nothing is left to save, and the
        # interpreter's teardown (TensorFlow's, threads') can take seconds on a busy machine.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(EXIT_INTERRUPTED)
    except KBuilderError as exc:
        if isinstance(exc, StorageLost):  # the tuner says it once
            sys.exit(STORAGE_LOST_EXIT)
        sys.stderr.write(f"kbuilder tune worker: {exc.title}: {' '.join(exc.details())}\n")
        sys.exit(exc.exit_code)


def run_study(
    config: TuneConfig, loaded: LoadedSpec, progress: Progress, recipe: dict[str, Any] | None = None
) -> None:
    """Create (or join) the study, then run its workers here or in `config.workers` processes.
    `loaded` is the spec the trials train; `recipe` the spec data best.yaml starts from (without
    the `--epochs` of the search; default: the trials')."""
    quiet_storage_thread_errors()
    try:
        _run_study(config, loaded, progress, recipe)
    except (KBuilderError, KeyboardInterrupt):
        raise
    except Exception as exc:
        if is_storage_lost(exc):
            raise storage_lost(config.resolved_storage(), config.study_dir, exc) from None
        raise


def _run_study(
    config: TuneConfig, loaded: LoadedSpec, progress: Progress, recipe: dict[str, Any] | None
) -> None:
    search = search_section(loaded)
    study = open_study(config, search, recipe or loaded.data, epochs=train_epochs(loaded))
    study.set_user_attr("target", target_of(config, search))
    study.set_user_attr("trial_epochs", train_epochs(loaded))
    if study.metric_names is None:  # optuna-dashboard then says `val_accuracy`, not "Objective 0"
        study.set_metric_names([search.metric])
    if search.baseline and search.sampler != "grid" and not study.get_trials(deepcopy=False):
        values = baseline_values(search, loaded.data, loaded.spec.model_dump(mode="json", exclude={"search"}))
        if values is not None:
            study.enqueue_trial(values, user_attrs={"baseline": True})
    progress.seen.update(t.number for t in study.get_trials(deepcopy=False) if t.state.is_finished())
    if ctrl_c_pressed():
        raise _interrupted()  # a Ctrl-C a library swallowed while the study opened
    if config.workers <= 1:
        previous = signal.getsignal(signal.SIGINT)
        catch_interrupts()
        try:
            run_worker(config, progress)
        except KeyboardInterrupt:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # the clean-up is short: let it finish
            progress.finish()
            raise _interrupted() from None
        finally:
            signal.signal(signal.SIGINT, previous)
        progress.finish()
        return
    workers: list[Any] = []
    try:
        _start_workers(config, workers)
        while any(worker.is_alive() for worker in workers):
            if ctrl_c_pressed():
                raise KeyboardInterrupt  # raised once already, and swallowed on the way
            progress.poll(study)
            time.sleep(POLL_SECONDS)
    except Exception:
        _stop(workers)  # the database is gone (or the tuner failed): a trial can record nothing now
        raise
    except KeyboardInterrupt:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C again must not break the stop
        try:
            progress.finish()
            _stop_workers(workers)
        finally:
            signal.signal(signal.SIGINT, previous)
        raise _interrupted() from None
    if any(w.exitcode == STORAGE_LOST_EXIT for w in workers):
        _stop(workers)
        raise storage_lost(config.resolved_storage(), config.study_dir)
    progress.poll(study)
    progress.finish()
    failed = [w for w in workers if w.exitcode not in (0, None)]
    if any(w.exitcode in (EXIT_INTERRUPTED, -signal.SIGINT) for w in failed):
        raise _interrupted()  # Ctrl-C reached the workers only (a signal to their process group)
    if failed and count_trials(study).done < target_of(config, search):
        codes = ", ".join(f"{w.name} exit {w.exitcode}" for w in failed)
        raise RuntimeFailure(
            f"{len(failed)} of {len(workers)} workers failed ({codes}) before the study had its trials; "
            "run the same command again to continue it"
        )


def _interrupted() -> Interrupted:
    return Interrupted(INTERRUPTED)


def _start_workers(config: TuneConfig, workers: list[Any]) -> None:
    """Start `config.workers` spawned processes (fresh interpreters: no forked TensorFlow state)
    into `workers`. Each starts with Ctrl-C ignored (an ignored signal stays ignored across exec,
    and Python then installs no KeyboardInterrupt handler), so Ctrl-C while a worker is still
    importing cannot end it with a traceback; the tuner takes that Ctrl-C and ends a worker that
    is not yet listening at once (it holds no trial, _stop_workers).

    The signal mask would not do: multiprocessing's spawn clears it in the child (Python 3.11).
    Meanwhile Ctrl-C is only noted here and raised once every worker has its start-up data: a
    KeyboardInterrupt in the middle of writing it would leave a worker a truncated pickle."""
    context = multiprocessing.get_context("spawn")
    interrupted: list[int] = []

    def note(signum: int, frame: Any) -> None:
        interrupted.append(signum)

    previous = signal.signal(signal.SIGINT, note)
    try:
        for i in range(config.workers):
            listening = context.RawValue("b", 0)  # shared memory without a lock: nothing to clean up
            worker = context.Process(target=_worker_main, args=(config, listening), name=f"tune-worker-{i}")
            worker.listening = listening  # type: ignore[attr-defined]
            workers.append(worker)
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # inherited by the worker (milliseconds here)
            try:
                worker.start()
            finally:
                signal.signal(signal.SIGINT, note)
    finally:
        signal.signal(signal.SIGINT, previous)
    if interrupted:
        raise KeyboardInterrupt  # now that every worker has all it needs to start (or be stopped)


def _stop_workers(workers: list[Any]) -> None:
    """Ctrl-C for every worker (a terminal sends it to all; `kill -INT` to the tuner only), then
    up to STOP_SECONDS for them to fail and queue their trials; any left are ended (their
    trials go stale and are retried when the study resumes). A worker still starting (not yet
    listening for Ctrl-C) holds no trial: it is ended at once."""
    for worker in workers:
        if worker.is_alive() and not worker.listening.value:
            worker.terminate()
        elif worker.is_alive() and worker.pid is not None:
            try:
                os.kill(worker.pid, signal.SIGINT)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + STOP_SECONDS
    for worker in workers:
        worker.join(timeout=max(0.0, deadline - time.monotonic()))
    _stop(workers)


def _stop(workers: list[Any]) -> None:
    """End the workers (their running trials go stale and are retried when the study resumes)."""
    for worker in workers:
        if worker.is_alive():
            worker.terminate()
    for worker in workers:
        worker.join(timeout=2)
        if worker.is_alive():
            worker.kill()
            worker.join(timeout=2)
