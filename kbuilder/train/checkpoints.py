"""The run's own checkpoint callbacks: backup for resuming, the best model, and the NaN stop.

Keras's BackupAndRestore overwrites `latest.weights.h5` in place (a SIGKILL in the middle
leaves an HDF5 file with a "bad object header" that fails every rerun), and its
ModelCheckpoint writes `best.keras` in place (a kill leaves a 0-byte file) and forgets its
best figure when a run restarts (keras-team/keras#17012). These write every file through a
temporary file and a rename, and keep the best figure in `best.json` beside the model.
"""

from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path
from typing import Any

import keras

from kbuilder.errors import RuntimeFailure
from kbuilder.storage import atomic
from kbuilder.storage.atomic import write_json
from kbuilder.storage.rundir import BACKUP_STATE, BEST_MODEL, BEST_STATE, RunDir, save_model

WEIGHTS_NAME = re.compile(r"^epoch-\d{1,9}(-batch-\d{1,12})?\.weights\.h5$")
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def _finite_loss(logs: dict | None) -> float | None:
    """The loss of `logs` if it is NaN or infinite, else None."""
    value = (logs or {}).get("loss")
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isfinite(number) else number


class DivergenceGuard(keras.callbacks.Callback):
    """Stops at the first batch whose loss is NaN or infinite; the fit stage then fails with
    exit code 3 and the checkpoints below skip that epoch, so the last good ones stay."""

    def __init__(self, stops: bool = True):
        super().__init__()
        self.diverged_at: tuple[int, int, float] | None = None  # (epoch, batch, loss)
        self.stops = stops  # terminate_on_nan: false lets the run go on (its checkpoints still skip NaN)
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        bad = _finite_loss(logs)
        if bad is not None and self.diverged_at is None:
            self.diverged_at = (self._epoch + 1, batch + 1, bad)
            self.model.stop_training = self.stops or self.model.stop_training

    def on_epoch_end(self, epoch, logs=None):
        bad = _finite_loss(logs)
        if bad is not None and self.diverged_at is None:
            self.diverged_at = (epoch + 1, 0, bad)
            self.model.stop_training = self.stops or self.model.stop_training


class RunBackup(keras.callbacks.Callback):
    """Weights and optimizer state after each epoch (or every `save_freq` batches) under
    backup/: the weights go to a new file, then training_metadata.json is replaced to
    point at it (the commit), then older weights files are removed. A kill at any point
    leaves a complete, consistent backup."""

    def __init__(self, directory: Path, save_freq: Any, guard: DivergenceGuard):
        super().__init__()
        self.directory = Path(directory)
        self.save_freq = save_freq
        self.guard = guard
        self._completed = 0
        self._batches = 0
        # A phased run restores once, itself, with the phase that wrote the backup compiled
        # (its optimizer state fits that phase's optimizer): kbuilder/train/phases.py.
        self.restore_on_begin = True

    def on_train_begin(self, logs=None):
        if self.restore_on_begin:
            self.restore()

    def restore(self) -> None:
        """Weights and optimizer state from the backup, if there is one."""
        state = read_backup_state(self.directory)
        if state is None:
            return
        weights = self.directory / state["weights"]
        model = self.model
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        try:
            model.load_weights(str(weights))
        except (OSError, ValueError, KeyError) as exc:
            raise RuntimeFailure(
                f"the backup {weights} cannot be restored ({type(exc).__name__}: {exc}); "
                "it does not match this model: train into a new --out"
            ) from None
        self._completed = state["epoch"]
        model._initial_epoch = state["epoch"]  # what keras.callbacks.BackupAndRestore sets

    def on_epoch_end(self, epoch, logs=None):
        self._completed = epoch + 1
        self._batches = 0
        if self.save_freq == "epoch":
            self._save(None)

    def on_train_batch_end(self, batch, logs=None):
        if self.save_freq == "epoch":
            return
        self._batches += 1
        if self._batches % self.save_freq == 0:
            self._save(batch + 1)

    def _save(self, batch: int | None) -> None:
        if self.guard.diverged_at is not None:
            return  # never back up weights that went NaN
        self.directory.mkdir(exist_ok=True)
        name = f"epoch-{self._completed}" + (f"-batch-{batch}" if batch is not None else "") + ".weights.h5"
        atomic.write_with(
            self.directory / name, lambda tmp: self.model.save_weights(tmp), suffix=".weights.h5"
        )
        write_json(
            self.directory / BACKUP_STATE,
            {"epoch": self._completed, "batch": batch or 0, "weights": name},
        )
        for old in self.directory.glob("epoch-*.weights.h5"):
            if old.name != name:
                old.unlink(missing_ok=True)


class BestCheckpoint(keras.callbacks.Callback):
    """best.keras whenever the monitored figure improves on the best of the whole run,
    earlier processes of a resumed run included."""

    def __init__(
        self,
        run: RunDir,
        monitor: str,
        higher_is_better: bool,
        best: float | None,
        guard: DivergenceGuard,
    ):
        super().__init__()
        self.run = run
        self.monitor = monitor
        self.higher = higher_is_better
        self.best = best
        self.guard = guard
        self.missing_warned = False

    def improves(self, value: float) -> bool:
        if self.best is None:
            return True
        return value > self.best if self.higher else value < self.best

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None:
            if not self.missing_warned:
                print(
                    f"kbuilder: model_checkpoint monitors '{self.monitor}', which this run does not log; "
                    f"no {BEST_MODEL} is kept",
                    file=sys.stderr,
                )
                self.missing_warned = True
            return
        value = float(value)
        if self.guard.diverged_at is not None or not math.isfinite(value) or not self.improves(value):
            return
        save_model(self.model, self.run / BEST_MODEL)
        write_json(
            self.run / BEST_STATE,
            {
                "monitor": self.monitor,
                "value": value,
                "epoch": epoch + 1,
                "higher_is_better": self.higher,
            },
        )
        self.best = value


def read_backup_state(directory: Path) -> dict | None:
    """The backup's metadata, if it names a real weights file inside the backup folder."""
    meta = Path(directory) / BACKUP_STATE
    if not meta.is_file():
        return None
    try:
        state = json.loads(meta.read_text())
    except (OSError, ValueError):
        raise RuntimeFailure(f"{meta} cannot be read; train into a new --out") from None
    if not (
        isinstance(state, dict)
        and isinstance(state.get("epoch"), int)
        and isinstance(state.get("weights"), str)
        and WEIGHTS_NAME.match(state["weights"])
    ):
        raise RuntimeFailure(
            f"{meta} is not a kbuilder backup (no epoch and weights file); train into a new --out"
        )
    weights = Path(directory) / state["weights"]
    if weights.is_symlink() or not weights.is_file():
        raise RuntimeFailure(
            f"{meta} names {weights.name}, which is missing from {directory}; train into a new --out"
        )
    with open(weights, "rb") as handle:
        if handle.read(len(HDF5_SIGNATURE)) != HDF5_SIGNATURE:
            raise RuntimeFailure(f"{weights} is not an HDF5 weights file; kbuilder refuses to load it")
    return state


def carried_best(
    run: RunDir, monitor: str, higher: bool, start_epoch: int, earlier_rows: list[dict]
) -> float | None:
    """The best figure of the epochs before a resume: from best.json (written with best.keras),
    else from the history; None for a fresh run."""
    if not start_epoch:
        return None
    try:
        state = json.loads((run / BEST_STATE).read_text())
    except (OSError, ValueError):
        state = None
    if (
        isinstance(state, dict)
        and state.get("monitor") == monitor
        and isinstance(state.get("value"), (int, float))
        and isinstance(state.get("epoch"), int)
        and state["epoch"] <= start_epoch
    ):
        return float(state["value"])
    values = [
        float(r[monitor])
        for r in earlier_rows
        if isinstance(r.get(monitor), (int, float)) and math.isfinite(r[monitor])
    ]
    if not values:
        return None
    return max(values) if higher else min(values)
