"""What a caller passes to `train` beside the spec, and what it gets back (no Keras import)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from kbuilder.train.utilization import utilization_line


@dataclass
class TrainOptions:
    """Command-line settings that are not part of the spec."""

    data_dir: str | Path | None = None
    out: str | Path | None = None
    backend: str | None = None
    verbose: int | None = None  # None: progress bars on a terminal, one line per epoch otherwise
    export: bool = True
    export_formats: tuple[str, ...] = ()  # onnx and/or tflite beside the SavedModel and .keras file
    quantize: str = "none"  # the TFLite file's quantization: none, float16, int8 (calibrated on train)
    runs_root: str | Path = "runs"
    extra_callbacks: list[Any] = field(default_factory=list)  # e.g. a test's interruption
    build: Callable[[Any], Any] | None = None  # the model factory; default kbuilder.build.build_model
    load_splits: Callable[..., Any] | None = (
        None  # the data loader; default kbuilder.train.data.load_splits (tune caches it)
    )


@dataclass
class TrainResult:
    run_dir: Path
    metrics: dict[str, Any]
    history: list[dict[str, Any]]


def summary_lines(result: TrainResult) -> list[str]:
    """A few lines for the end of `kbuilder train`."""
    m = result.metrics
    lines = [f"run directory: {result.run_dir}"]
    figures = [
        f"{k}={m[k]:.4f}"
        for k in ("test_accuracy", "test_loss", "val_accuracy", "val_loss", "train_loss")
        if isinstance(m.get(k), float)
    ]
    if figures:
        lines.append("final: " + " ".join(figures))
    epochs = m.get("epoch_seconds") or []
    if epochs:
        steady = epochs[1:] or epochs
        pace = f"{sum(steady) / len(steady):.2f} s/epoch" + (" after the first" if len(epochs) > 1 else "")
        rate = m.get("samples_per_second_after_first_epoch") or m.get("samples_per_second")
        count = len(epochs)
        lines.append(
            f"{count} epoch{'s' if count != 1 else ''} in {m['train_seconds']:.1f} s ({pace}), "
            f"{rate} samples/s, {m['backend']} on {m['device']}"
        )
    used = utilization_line(m.get("utilization"))
    if used:
        lines.append(used)
    if str(m.get("export", "")).startswith(("skipped", "failed")):
        lines.append(f"export {m['export']}")
    return lines


def print_summary(result: TrainResult, stream: TextIO | None = None) -> None:
    stream = stream or sys.stdout
    for line in summary_lines(result):
        stream.write(line + "\n")
