"""The per-epoch progress line counts batches, whatever Keras calls a step."""

from __future__ import annotations

import io

from kbuilder.train.progress import EpochProgress, format_per_batch, format_seconds


def _epoch(progress: EpochProgress, calls: int, logs: dict) -> None:
    progress.on_epoch_begin(0)
    for call in range(calls):
        progress.on_train_batch_end(call, {"loss": 0.5})
    progress.on_epoch_end(0, logs)


def test_fused_calls_are_counted_as_batches():
    """937 batches fused 100 to a call are ten Keras steps: the line says 937 batches."""
    out = io.StringIO()
    progress = EpochProgress(epochs=10, batches=937, batches_per_call=100, live=False, stream=out)
    _epoch(progress, 10, {"accuracy": 0.9514, "loss": 0.1598, "seconds": 5.7272, "learning_rate": 0.01})
    line = out.getvalue()
    assert line.startswith("Epoch 1/10 - 937 batches in ") and line.endswith("\n")
    assert "ms/batch" in line and "/step" not in line
    assert "seconds" not in line and "5.7272" not in line  # the epoch's time is said once, up front
    assert line.count("\n") == 1 and " - accuracy: 0.9514 - loss: 0.1598 - learning_rate: 0.0100" in line


def test_a_terminal_sees_the_line_redrawn_then_finished():
    out = io.StringIO()
    progress = EpochProgress(epochs=2, batches=50, batches_per_call=1, live=True, stream=out)
    progress.on_epoch_begin(1)
    progress.on_train_batch_end(0, {"loss": 1.0})
    assert out.getvalue().startswith("\rEpoch 2/2 - 1/50 batches, ") and "\n" not in out.getvalue()
    for step in range(1, 50):
        progress.on_train_batch_end(step, {"loss": 0.5})
    progress.on_epoch_end(1, {"loss": 0.5})
    assert out.getvalue().endswith("\n") and "\rEpoch 2/2 - 50 batches in " in out.getvalue()


def test_an_interrupted_terminal_line_is_ended():
    out = io.StringIO()
    progress = EpochProgress(epochs=2, batches=50, batches_per_call=1, live=True, stream=out)
    progress.on_epoch_begin(0)
    progress.on_train_batch_end(0, {"loss": 1.0})
    progress.break_line()
    assert out.getvalue().endswith("\n")


def test_times_read_naturally():
    assert format_seconds(0.4532) == "0.45 s" and format_seconds(125) == "2 min 5 s"
    assert format_per_batch(0.000587) == "0.587 ms/batch" and format_per_batch(2.5) == "2.5 s/batch"
