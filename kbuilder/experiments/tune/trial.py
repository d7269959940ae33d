"""One trial: sample the space, validate the sampled spec, train it as an ordinary run, report.

The spec of a trial is the tuned spec with the `fixed` and sampled values set at their paths
and without the `search` section, validated exactly like a file. A spec that does not validate
or build, or a run that fails, fails that trial with its message (stored as the trial's
`error`), never the study. The run directory is `<study>/trials/trial-NNNN`.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import signal
import socket
import sys
import threading
from pathlib import Path
from typing import Any

import optuna

from kbuilder.errors import KBuilderError, RuntimeFailure, SpecError, debugging, quiet_logged_ctrl_c
from kbuilder.experiments.tune.space import suggest
from kbuilder.experiments.tune.study import (
    TRIALS_DIR,
    TuneConfig,
    is_duplicate_retry,
    is_surplus,
    search_section,
    train_epochs,
)
from kbuilder.spec import LoadedSpec, validate_data
from kbuilder.spec.loader import SourceMap
from kbuilder.spec.search_check import apply_values, trial_values
from kbuilder.train import TrainOptions, TrainResult, train
from kbuilder.train.data import Arrays, Splits, load_splits

# Figures of metrics.json kept on each trial (the table shows them beside the metric).
FIGURES = (
    "val_accuracy",
    "val_loss",
    "test_accuracy",
    "test_loss",
    "train_accuracy",
    "train_loss",
    "epochs_run",
    "train_seconds",
)


class TrialFailed(Exception):
    """The trial ran and failed on its own (its message is the trial's `error`)."""


class Surplus(Exception):
    """The requested number of trials was reached while this one was being created."""


class Interrupted(Exception):
    """Ctrl-C during a trial: the trial is failed, queued again, and the worker stops."""


# Set by the first Ctrl-C (SIGINT) a worker receives; a worker that saw it fails its trial as
# interrupted and never starts another. Only while a trial prepares and trains does Ctrl-C also
# raise KeyboardInterrupt (to stop it at once): raised in Optuna's bookkeeping (between creating
# a trial and its heartbeat, while telling its result) it would leave a trial running forever.
# Code on the way (Keras, the training run, a library) may turn the KeyboardInterrupt into
# another error or swallow it; the flag does not depend on it.
_STOP = threading.Event()
_IN_TRIAL = threading.Event()


def stop_requested() -> bool:
    return _STOP.is_set()


def _on_interrupt(signum, frame) -> None:
    first = not _STOP.is_set()
    _STOP.set()
    if first and _IN_TRIAL.is_set():  # a second Ctrl-C (the tuner passes it on) must not break the clean-up
        raise KeyboardInterrupt


def catch_interrupts() -> None:
    """In a worker: Ctrl-C sets the stop flag (and interrupts once)."""
    _STOP.clear()
    signal.signal(signal.SIGINT, _on_interrupt)
    sys.unraisablehook = _quiet_unraisable
    quiet_logged_ctrl_c()


def _quiet_unraisable(info) -> None:
    """Ctrl-C that lands in a finalizer (a weakref callback of TensorFlow's) cannot propagate;
    Python would print it as 'Exception ignored' with a traceback. The stop flag carries it."""
    if isinstance(info.exc_value, KeyboardInterrupt) and _STOP.is_set():
        return
    sys.__unraisablehook__(info)


class QuietFailures(logging.Filter):
    """Optuna logs every failed trial twice, the first time with its traceback. kbuilder says
    each already: a trial that failed on its own in its progress line and the table (with its
    error), an interrupted one in the command's last line; a surplus one never ran. Their
    records go; any other keeps its message without the traceback. All stay with --debug
    (KBUILDER_DEBUG)."""

    SAID = (Interrupted, KeyboardInterrupt, TrialFailed, Surplus)

    def __init__(self) -> None:
        super().__init__()
        self.said: set[str] = set()  # trial numbers whose records are dropped

    def filter(self, record: logging.LogRecord) -> bool:
        if debugging():
            return True
        message = record.getMessage()
        trial = message.split(" ", 2)[1] if message.startswith("Trial ") else ""
        if record.exc_info and record.exc_info[0] in self.SAID:
            self.said.add(trial)
            return False
        if trial in self.said and "failed with value" in message:
            return False
        record.exc_info, record.exc_text = None, None
        return True


def quiet_failed_trials() -> None:
    """Install QuietFailures once on the handlers of Optuna's logger (a logger's own filters do
    not see the records of its children, optuna.study._optimize among them)."""
    for handler in logging.getLogger("optuna").handlers:
        if not any(isinstance(f, QuietFailures) for f in handler.filters):
            handler.addFilter(QuietFailures())


def trial_spec(loaded: LoadedSpec, sampled: dict[str, Any], label: str) -> LoadedSpec:
    """The LoadedSpec a trial trains: fixed and sampled values set, search removed, validated."""
    resolved = loaded.spec.model_dump(mode="json", exclude={"search"})
    values = trial_values(search_section(loaded), loaded.data, resolved, sampled)
    data, source = apply_values(loaded.data, values, loaded.source, label)
    return LoadedSpec(validate_data(data, source), data, source, loaded.path)


def spec_data_for(spec_data: dict[str, Any], sampled: dict[str, Any]) -> dict[str, Any]:
    """The raw spec data of a trial from the study's stored spec (for the best spec file)."""
    source = SourceMap("<study spec>")
    spec = validate_data(copy.deepcopy(spec_data), source)
    if spec.search is None:
        raise RuntimeFailure(
            "the study's stored spec has no search section (was it started by kbuilder tune?)"
        )
    values = trial_values(spec.search, spec_data, spec.model_dump(mode="json", exclude={"search"}), sampled)
    out, _ = apply_values(spec_data, values, source, "best trial")
    return out


class SplitsCache:
    """Data loaded once per worker: trials of one study read the same files (the arrays are shared;
    preprocessing makes new ones, so a trial never changes what the next one gets)."""

    def __init__(self) -> None:
        self._store: dict[str, Any] = {}

    def __call__(self, data, *, spec_dir, data_dir, input_shape, seed) -> Splits:
        key = json.dumps(
            [
                data.model_dump(mode="json", exclude={"preprocess", "augment", "shuffle"}),
                str(spec_dir),
                str(data_dir),
                list(input_shape),
                seed,
            ],
            sort_keys=True,
        )
        if key not in self._store:
            self._store[key] = load_splits(
                data, spec_dir=spec_dir, data_dir=data_dir, input_shape=input_shape, seed=seed
            )
        cached = self._store[key]

        def copy(arrays):
            return None if arrays is None else Arrays(arrays.x, arrays.y)

        return Splits(copy(cached.train), copy(cached.validation), copy(cached.test), cached.origin)


def epoch_figures(logs: dict | None) -> dict[str, float]:
    """The epoch's loss and metrics, rounded for a progress line."""
    return {
        k: round(float(v), 4)
        for k, v in (logs or {}).items()
        if isinstance(v, (int, float)) and math.isfinite(v) and k not in ("learning_rate", "seconds")
    }


def pruning_callback(trial: optuna.Trial, key: str | None, epochs: int, shown=None):
    """A Keras callback that reports the per-epoch metric to the trial and stops a pruned run;
    each epoch's figures go into the trial's `progress` (the tuner shows them while it runs)."""
    # Keras is imported when the first trial starts, not with this module: the command validates
    # the spec before paying for Keras, and importing Keras fixes its backend. So the callback
    # class is made here rather than at module level.
    import keras

    class ReportToTrial(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.pruned_at: int | None = None

        # Ctrl-C that something on the way swallowed stops the run at the next step, not at the
        # epoch's end. The *_begin hooks run in the training thread (Keras dispatches *_end
        # hooks to another thread when no callback needs them there), and cost one check a step.
        def on_train_batch_begin(self, batch, logs=None):
            if stop_requested():
                raise KeyboardInterrupt

        def on_test_batch_begin(self, batch, logs=None):
            if stop_requested():
                raise KeyboardInterrupt

        def on_epoch_end(self, epoch, logs=None):
            if stop_requested():
                raise KeyboardInterrupt
            trial.set_user_attr("progress", {"epoch": epoch + 1, "epochs": epochs, **epoch_figures(logs)})
            if shown is not None:
                shown()
            value = (logs or {}).get(key) if key else None
            if value is None:
                return
            trial.report(float(value), step=epoch + 1)
            if trial.should_prune():
                self.pruned_at = epoch + 1
                self.model.stop_training = True  # the run still finishes as a complete run directory

    return ReportToTrial()


class TrialRunner:
    """The objective of one worker: keeps the tuned spec and the data cache between trials."""

    def __init__(self, config: TuneConfig, loaded, target: int, sampler=None, on_progress=None):
        self.config = config
        self.on_progress = (
            on_progress  # called when a trial starts and after each epoch (in-process progress)
        )
        self.loaded = loaded
        self.search = search_section(loaded)
        self.target = target
        self.sampler = sampler
        self.splits = SplitsCache()

    def __call__(self, trial: optuna.Trial) -> float:
        if stop_requested():  # Ctrl-C while Optuna created this trial: not sampled, nothing to queue
            raise Interrupted()
        if is_surplus(trial.study, trial.number, self.target) or is_duplicate_retry(
            trial.study, trial.number
        ):
            trial.set_user_attr("surplus", True)
            trial.set_user_attr("run_dir", None)  # a retry carries its original's; this one trains nowhere
            raise Surplus()
        sampled = suggest(trial, self.search)
        inner = self.sampler.inner(trial.number) if hasattr(self.sampler, "inner") else self.sampler
        if hasattr(inner, "round_of"):  # coarse_to_fine: the round and its intervals go in the report
            trial.set_user_attr("round", inner.round_of(trial.number))
            trial.set_user_attr("intervals", inner.trial_intervals(trial.study, trial.number))
        run_dir = Path(self.config.study_dir) / TRIALS_DIR / f"trial-{trial.number:04d}"
        trial.set_user_attr("run_dir", str(run_dir.resolve()))
        trial.set_user_attr("host", socket.gethostname())
        trial.set_user_attr("pid", os.getpid())
        self._progress(trial)
        try:
            _IN_TRIAL.set()
            if stop_requested():  # Ctrl-C while the trial was sampled
                raise KeyboardInterrupt
            loaded = trial_spec(self.loaded, sampled, f"trial {trial.number}")
            self._share_cores(loaded)
            result, callback = self._train(trial, loaded, run_dir)
        except KeyboardInterrupt:
            self._requeue(trial)
            raise Interrupted() from None
        except Exception as exc:  # noqa: BLE001  (any failure fails this trial, not the study)
            if stop_requested() or _caused_by_interrupt(exc):  # the runner turns Ctrl-C into a RuntimeFailure
                self._requeue(trial)
                raise Interrupted() from None
            trial.set_user_attr("error", _message(exc))
            raise TrialFailed(_message(exc)) from None
        finally:
            _IN_TRIAL.clear()
        if stop_requested():  # Ctrl-C was swallowed on the way: this trial may have stopped short
            self._requeue(trial)
            raise Interrupted()
        figures = {
            k: result.metrics.get(k) for k in FIGURES if isinstance(result.metrics.get(k), (int, float))
        }
        trial.set_user_attr("figures", figures)
        value = result.metrics.get(self.search.metric)
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            known = sorted(k for k, v in result.metrics.items() if isinstance(v, float))
            message = (
                f"the run has no figure '{self.search.metric}' (it has {', '.join(known)})"
                if value is None or not isinstance(value, (int, float))
                else f"{self.search.metric} is {value} (the training diverged)"
            )
            trial.set_user_attr("error", message)
            raise TrialFailed(message)
        if callback.pruned_at is not None:
            trial.set_user_attr("pruned_at_epoch", callback.pruned_at)
            raise optuna.TrialPruned(f"pruned after epoch {callback.pruned_at}")
        return float(value)

    def _train(self, trial: optuna.Trial, loaded: LoadedSpec, run_dir: Path) -> tuple[TrainResult, Any]:
        import keras  # when a trial starts (see pruning_callback)

        keras.utils.clear_session()  # the previous trial's model and functions are not needed again
        callback = pruning_callback(
            trial, self.search.epoch_metric(), train_epochs(loaded), lambda: self._progress(trial)
        )
        result = train(
            loaded,
            TrainOptions(
                data_dir=self.config.data_dir,
                out=run_dir,
                backend=self.config.backend,
                verbose=0,
                export=self.config.export,
                extra_callbacks=[callback],
                load_splits=self.splits,
            ),
        )
        return result, callback

    def _progress(self, trial: optuna.Trial) -> None:
        if self.on_progress is not None:
            self.on_progress(trial.study)

    def _share_cores(self, loaded) -> None:
        """K workers on one machine split its cores (unless the spec sets threads): K math
        libraries each using every core slow each other down more than they gain."""
        performance = loaded.spec.train.performance
        if self.config.workers > 1 and performance.threads is None:
            performance.threads = max(1, (os.cpu_count() or 1) // self.config.workers)

    def _requeue(self, trial) -> None:
        """Queue the interrupted trial's values again, so the next run of the study retries them."""
        trial.study.enqueue_trial(
            dict(trial.params), user_attrs={"retry_of": trial.number}, skip_if_exists=False
        )


def _caused_by_interrupt(exc: BaseException | None) -> bool:
    """Whether Ctrl-C is anywhere in the chain of errors that led to this one."""
    seen = 0
    while exc is not None and seen < 20:
        if isinstance(exc, KeyboardInterrupt):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def _message(exc: BaseException) -> str:
    if isinstance(exc, SpecError):
        return f"{exc.title}: " + "; ".join(exc.details())
    if isinstance(exc, KBuilderError):
        return f"{exc.title}: " + " ".join(exc.details())
    return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
