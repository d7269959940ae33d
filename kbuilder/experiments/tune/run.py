"""Running a study: worker loops (in this process or in K spawned processes) and progress lines.

A worker takes one trial at a time until the study has its requested number of counted trials
(see study.py). It first fails the trials of dead workers (stale heartbeats), which queues
their retries; when the remaining places are held by trials still running elsewhere, it waits
for them instead of starting more, so a study never trains more than it was asked to.
"""

from __future__ import annotations

import multiprocessing
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

import optuna
from optuna.storages import fail_stale_trials

from kbuilder.backend import quiet_tensorflow_startup
from kbuilder.errors import KBuilderError, RuntimeFailure
from kbuilder.experiments.tune.report import trial_line
from kbuilder.experiments.tune.study import (
    TuneConfig,
    count_trials,
    open_study,
    search_section,
    train_epochs,
)
from kbuilder.experiments.tune.trial import Interrupted, Surplus, TrialFailed, TrialRunner
from kbuilder.spec import LoadedSpec, load_spec
from kbuilder.spec.search import SearchSpec
from kbuilder.spec.search_check import baseline_values

POLL_SECONDS = 1.0


def target_of(config: TuneConfig, search: SearchSpec) -> int:
    return config.trials or search.trial_count()


def run_worker(config: TuneConfig, announce: Callable | None = None) -> None:
    """One worker's loop; returns when the study has its trials."""
    loaded = load_spec(config.spec_file, overrides=config.overrides)
    search = search_section(loaded)
    study = open_study(config, search, loaded.data, epochs=train_epochs(loaded))
    target = target_of(config, search)
    runner = TrialRunner(config, loaded, target, sampler=study.sampler)
    callbacks = [announce] if announce is not None else None
    while True:
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
        except Interrupted:
            raise KeyboardInterrupt from None
        except optuna.exceptions.OptunaError as exc:
            raise RuntimeFailure(f"the study storage failed: {exc}") from None


def _worker_main(config: TuneConfig) -> None:
    """Entry point of a spawned worker process (exit code 0, or the error's code)."""
    quiet_tensorflow_startup()  # as the command does: TensorFlow's start-up chatter stays out of the output
    try:
        run_worker(config)
    except KeyboardInterrupt:
        sys.exit(130)
    except KBuilderError as exc:
        sys.stderr.write(f"kbuilder tune worker: {exc.title}: {' '.join(exc.details())}\n")
        sys.exit(exc.exit_code)


class Progress:
    """One line per finished trial on stderr, in the order the study sees them."""

    def __init__(self, search: SearchSpec, target: int, stream: TextIO | None = None, enabled: bool = True):
        self.search, self.target = search, target
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.seen: set[int] = set()

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:  # an Optuna callback
        self.show(study, [trial])

    def poll(self, study: optuna.Study) -> None:
        self.show(study, study.get_trials(deepcopy=False))

    def show(self, study: optuna.Study, trials: list[Any]) -> None:
        for trial in sorted(trials, key=lambda t: t.number):
            if trial.number in self.seen or trial.user_attrs.get("surplus") or not trial.state.is_finished():
                continue
            self.seen.add(trial.number)
            if self.enabled:
                done = count_trials(study).done
                self.stream.write(f"[{done}/{self.target}] {trial_line(trial, self.search)}\n")
                self.stream.flush()


def run_study(
    config: TuneConfig, loaded: LoadedSpec, progress: Progress, recipe: dict[str, Any] | None = None
) -> None:
    """Create (or join) the study, then run its workers here or in `config.workers` processes.
    `loaded` is the spec the trials train; `recipe` the spec data best.yaml starts from (without
    the `--epochs` of the search; default: the trials')."""
    search = search_section(loaded)
    study = open_study(config, search, recipe or loaded.data, epochs=train_epochs(loaded))
    study.set_user_attr("target", target_of(config, search))
    study.set_user_attr("trial_epochs", train_epochs(loaded))
    if search.baseline and search.sampler != "grid" and not study.get_trials(deepcopy=False):
        values = baseline_values(search, loaded.data, loaded.spec.model_dump(mode="json", exclude={"search"}))
        if values is not None:
            study.enqueue_trial(values, user_attrs={"baseline": True})
    progress.seen.update(t.number for t in study.get_trials(deepcopy=False) if t.state.is_finished())
    if config.workers <= 1:
        try:
            run_worker(config, announce=progress)
        except KeyboardInterrupt:
            raise RuntimeFailure(
                "interrupted; the finished trials are kept: run the same command again to continue the study"
            ) from None
        return
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no forked TensorFlow state
    workers = [
        context.Process(target=_worker_main, args=(config,), name=f"tune-worker-{i}")
        for i in range(config.workers)
    ]
    for worker in workers:
        worker.start()
    try:
        while any(worker.is_alive() for worker in workers):
            progress.poll(study)
            time.sleep(POLL_SECONDS)
    except KeyboardInterrupt:
        for worker in workers:
            worker.join(timeout=60)
        raise RuntimeFailure(
            "interrupted; the finished trials are kept: run the same command again to continue the study"
        ) from None
    progress.poll(study)
    failed = [w for w in workers if w.exitcode not in (0, None)]
    if failed and count_trials(study).done < target_of(config, search):
        codes = ", ".join(f"{w.name} exit {w.exitcode}" for w in failed)
        raise RuntimeFailure(
            f"{len(failed)} of {len(workers)} workers failed ({codes}) before the study had its trials; "
            "run the same command again to continue it"
        )
