"""Keras callbacks of a run: the spec's list plus the ones every run keeps by default."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable
from typing import Any

import keras
from pydantic import TypeAdapter

from kbuilder.backend import tensorboard_available
from kbuilder.spec.train.callbacks import DEFAULT_CALLBACKS, Callback
from kbuilder.storage import atomic
from kbuilder.storage.atomic import write_json
from kbuilder.storage.rundir import HISTORY_CSV, HISTORY_JSON, LOG_DIR, RunDir
from kbuilder.train.checkpoints import BestCheckpoint, DivergenceGuard, RunBackup, carried_best


def auto_monitor(monitor: str, has_validation: bool) -> str:
    if monitor != "auto":
        return monitor
    return "val_loss" if has_validation else "loss"


class EpochRecorder(keras.callbacks.Callback):
    """Times each epoch (training part and whole), adds `seconds` and `learning_rate` to the
    logs the later callbacks see, and rewrites history.json after every epoch."""

    def __init__(self, run: RunDir, earlier_rows: list[dict], train_samples: int, csv_separator: str | None):
        super().__init__()
        self.run = run
        self.csv_separator = csv_separator
        self.rows = list(earlier_rows)
        self.train_samples = train_samples
        self.phase: str | None = None  # the phase the next epochs belong to (phased runs)
        self.train_seconds: list[float] = []
        self.epoch_seconds: list[float] = []
        self._start = self._train_end = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()
        self._train_end = 0.0

    def on_test_begin(self, logs=None):
        if self._start and not self._train_end:
            self._train_end = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        now = time.perf_counter()
        train_part = (self._train_end or now) - self._start
        self.train_seconds.append(train_part)
        self.epoch_seconds.append(now - self._start)
        if logs is not None:
            logs["seconds"] = round(now - self._start, 4)
            logs["learning_rate"] = _current_lr(self.model)
        row = {"epoch": epoch + 1, **{k: _number(v) for k, v in (logs or {}).items()}}
        if self.phase is not None:
            row["phase"] = self.phase
        self.rows = [r for r in self.rows if r.get("epoch") != epoch + 1] + [row]
        write_json(self.run / HISTORY_JSON, self.rows)
        if self.csv_separator is not None:
            atomic.write_text(self.run / HISTORY_CSV, history_csv(self.rows, self.csv_separator))


def _number(value: Any) -> Any:
    try:
        return float(value)
    except (TypeError, ValueError):
        return value


def _current_lr(model: Any) -> float | None:
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        return None
    try:
        return float(keras.ops.convert_to_numpy(optimizer.learning_rate))
    except (TypeError, ValueError, AttributeError):
        return None


def history_csv(rows: list[dict], separator: str) -> str:
    """history.csv, rewritten whole every epoch (an append cut by a kill would leave half a line).
    Its epochs count from 1, as history.json, best.json, curves.png and the progress lines do
    (Keras's CSVLogger counted from 0)."""
    keys = ["epoch"] + sorted({k for r in rows for k in r} - {"epoch"})
    text = io.StringIO()
    writer = csv.writer(text, delimiter=separator, lineterminator="\n")
    writer.writerow(keys)
    for row in rows:
        writer.writerow(["" if row.get(k) is None else row.get(k) for k in keys])
    return text.getvalue()


def enabled_callback(train, kind: str) -> Any:
    """The spec's settings of callback `kind` (its defaults if it runs by default), or None when off."""
    spec = next((c for c in train.callbacks if c.type == kind), None)
    if spec is None and kind in DEFAULT_CALLBACKS:
        spec = TypeAdapter(Callback).validate_python({"type": kind})
    return spec if spec is not None and spec.enabled else None


def counts_batches(train) -> bool:
    """Whether a callback acts every N batches: it counts Keras's calls, so it keeps Keras's
    steps_per_execution at 1 under `auto` (performance.settle_keras_steps)."""
    backup, board = enabled_callback(train, "backup_and_restore"), enabled_callback(train, "tensorboard")
    return (backup is not None and backup.save_freq != "epoch") or (
        board is not None and board.update_freq != "epoch"
    )


def build_callbacks(
    train, run: RunDir, *, has_validation: bool, start_epoch: int, earlier_rows: list[dict]
) -> list[Any]:
    """The callbacks after the recorder, in a fixed order: the NaN guard first (the
    checkpoints after it skip a diverged epoch), then the backup (it restores first), then
    the best model, then Keras's own."""

    def setting(kind: str) -> Any:
        return enabled_callback(train, kind)

    # The guard runs even with terminate_on_nan off: a NaN model must never become a checkpoint.
    guard = DivergenceGuard(stops=setting("terminate_on_nan") is not None)
    callbacks: list[Any] = [guard]
    if spec := setting("backup_and_restore"):
        callbacks.append(RunBackup(run.backup, spec.save_freq, guard))
    if spec := setting("model_checkpoint"):
        monitor = auto_monitor(spec.monitor, has_validation)
        higher = higher_is_better(monitor, spec.mode)
        best = carried_best(run, monitor, higher, start_epoch, earlier_rows)
        callbacks.append(BestCheckpoint(run, monitor, higher, best, guard))
    return callbacks + _keras_callbacks(setting, run, has_validation)


def _keras_callbacks(setting: Callable[[str], Any], run: RunDir, has_validation: bool) -> list[Any]:
    """TensorBoard (where it is installed), early stopping and the plateau schedule."""
    callbacks: list[Any] = []
    if (spec := setting("tensorboard")) and tensorboard_available():
        callbacks.append(
            keras.callbacks.TensorBoard(
                str(run / LOG_DIR),
                histogram_freq=spec.histogram_freq,
                update_freq=spec.update_freq,
                write_graph=False,
            )
        )
    if spec := setting("early_stopping"):
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=auto_monitor(spec.monitor, has_validation),
                patience=spec.patience,
                min_delta=spec.min_delta,
                mode=spec.mode,
                restore_best_weights=spec.restore_best_weights,
                start_from_epoch=spec.start_from_epoch,
            )
        )
    if spec := setting("reduce_lr_on_plateau"):
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor=auto_monitor(spec.monitor, has_validation),
                factor=spec.factor,
                patience=spec.patience,
                min_delta=spec.min_delta,
                cooldown=spec.cooldown,
                min_lr=spec.min_lr,
                mode=spec.mode,
            )
        )
    return callbacks


def higher_is_better(monitor: str, mode: str) -> bool:
    if mode != "auto":
        return mode == "max"
    return any(word in monitor for word in ("accuracy", "auc", "precision", "recall"))
