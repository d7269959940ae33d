"""The per-epoch progress line of `kbuilder train`, counted in the run's batches.

Keras's own progress bar counts its steps: with fused steps (or Keras's steps_per_execution)
one step is up to a hundred batches, so MNIST's 937 batches showed as `10/10 - 587ms/step`.
This line counts batches and times one batch, and shows the epoch's time once (the
`seconds` the recorder adds to the logs is for history.json, not a metric):

    Epoch 2/10 - 937 batches in 0.45 s (0.48 ms/batch) - accuracy: 0.9514 - loss: 0.1598

On a terminal the same line is redrawn while the epoch runs (at most ten times a second);
piped, only the finished line is written.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

import keras

# Keys of the epoch logs that are not figures of the model (see EpochRecorder).
NOT_SHOWN = frozenset({"seconds"})
REDRAW_SECONDS = 0.1


def format_seconds(seconds: float) -> str:
    return f"{seconds:.2f} s" if seconds < 60 else f"{int(seconds // 60)} min {seconds % 60:.0f} s"


def format_per_batch(seconds: float) -> str:
    return f"{seconds * 1000:.3g} ms/batch" if seconds < 1 else f"{seconds:.3g} s/batch"


def format_value(value: Any) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return f"{number:.4f}" if abs(number) >= 1e-3 or number == 0 else f"{number:.4e}"


class EpochProgress(keras.callbacks.Callback):
    """Prints `Epoch i/n - B batches in S s (T ms/batch) - metric: value ...` per epoch.

    `batches_per_call` is how many batches one Keras step trains (fused steps times Keras's
    steps_per_execution), so progress is counted by the calls Keras reports, never by its
    step index (which counts calls, not batches)."""

    def __init__(
        self,
        *,
        epochs: int,
        batches: int,
        batches_per_call: int,
        live: bool,
        stream: TextIO | None = None,
    ):
        super().__init__()
        self.epochs, self.batches, self.batches_per_call = epochs, batches, max(1, batches_per_call)
        self.live = live
        self.stream = stream
        self._calls = 0
        self._start = self._train_end = self._last_draw = 0.0
        self._width = 0

    @property
    def out(self) -> TextIO:
        return self.stream or sys.stdout

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        self._calls = 0
        self._start = time.perf_counter()
        self._train_end = self._last_draw = 0.0

    def on_train_batch_end(self, batch, logs=None):
        self._calls += 1
        now = time.perf_counter()
        if self.live and now - self._last_draw >= REDRAW_SECONDS:
            self._last_draw = now
            done = self.batches_done
            left = (now - self._start) / done * (self.batches - done) if done else 0.0
            line = f"{self._head()} - {done}/{self.batches} batches, {format_seconds(left)} left"
            self._draw(line + _figures(logs), end="")

    def on_test_begin(self, logs=None):
        if self._start and not self._train_end:
            self._train_end = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        now = time.perf_counter()
        self._draw(self.epoch_line(now - self._start, (self._train_end or now) - self._start, logs), end="\n")
        self._width = 0

    def break_line(self) -> None:
        """End a half-drawn live line (Ctrl-C), so what is printed next starts on its own."""
        if self.live and self._width:
            self.out.write("\n")
            self.out.flush()
            self._width = 0

    @property
    def batches_done(self) -> int:
        return min(self.batches, self._calls * self.batches_per_call)

    def epoch_line(self, epoch_seconds: float, train_seconds: float, logs: dict | None) -> str:
        """The finished epoch: its batches, its time, the time of one batch, its figures."""
        done = self.batches_done or self.batches
        per_batch = format_per_batch(train_seconds / done) if done else ""
        return f"{self._head()} - {done} batches in {format_seconds(epoch_seconds)} ({per_batch})" + _figures(
            logs
        )

    def _head(self) -> str:
        return f"Epoch {self._epoch + 1}/{self.epochs}"

    def _draw(self, line: str, end: str) -> None:
        if self.live:
            padding = " " * max(0, self._width - len(line))
            self.out.write("\r" + line + padding + end)
            self._width = len(line) if not end else 0
        elif end:
            self.out.write(line + end)
        self.out.flush()


def _figures(logs: dict | None) -> str:
    return "".join(
        f" - {key}: {format_value(value)}" for key, value in (logs or {}).items() if key not in NOT_SHOWN
    )
