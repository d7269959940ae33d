"""The export check: every written file, run back on seeded random batches of two sizes,
must reproduce the in-memory model within the tolerance rule of `kbuilder.export.check`.

A quantized TFLite file cannot meet that rule; it must run at both batch sizes with finite
outputs of the model's shapes, and its figures (max abs difference, top-1 agreement on the
random inputs) go to the manifest instead.
"""

from __future__ import annotations

import pathlib
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from kbuilder.errors import RuntimeFailure
from kbuilder.export.check import (
    CHECK_BATCH_SIZES,
    DEFAULT_ATOL,
    DEFAULT_RTOL,
    check_batch,
    compare_outputs,
    flat_numpy,
    max_abs_diff,
)
from kbuilder.export.formats import DEFAULT_FORMATS, FORMATS, Runner, normalize_formats
from kbuilder.export.tflite import TFLITE_FILE, top1_agreement


def verify_export(
    model: keras.Model,
    directory: pathlib.Path,
    *,
    formats: Sequence[str] = DEFAULT_FORMATS,
    quantize: str = "none",
    atol: float = DEFAULT_ATOL,
    rtol: float = DEFAULT_RTOL,
) -> dict[str, Any]:
    """Runs every written file in `directory` and compares it with `model` on seeded random
    batches of CHECK_BATCH_SIZES (`.keras` reloaded with safe_mode=True).

    Returns {"batch_sizes", "max_abs_diff": {file: figure}, "tolerance_ratio": {file:
    figure}} (worst over both batches), plus "quantized" figures for a quantized TFLite
    file; raises `RuntimeFailure` naming every file and output that exceeds max(atol,
    rtol * the sample's largest |expected|) (a quantized file: wrong shapes or non-finite
    outputs).
    """
    chosen = normalize_formats(formats)
    results: dict[str, Any] = {
        "batch_sizes": list(CHECK_BATCH_SIZES),
        "max_abs_diff": {},
        "tolerance_ratio": {},
    }
    quantized: dict[str, Any] = {}
    problems: list[str] = []
    runners: dict[str, Runner] = {}
    for size in CHECK_BATCH_SIZES:
        batch, tensors, arrays = check_batch(model, size)
        expected = flat_numpy(model(batch, training=False))
        if not runners:  # opened once (the .keras file is loaded once) for every batch
            names = [tensor.name for tensor in tensors]
            for name in chosen:
                entry = FORMATS[name]
                runners[entry.file] = entry.open(directory / entry.file, names)
        for artifact, run in runners.items():
            outputs = run(arrays)
            if artifact == TFLITE_FILE and quantize != "none":
                problems += _record_quantized(quantized, artifact, quantize, size, expected, outputs)
                continue
            diff, ratio, found = compare_outputs(
                f"{artifact} (batch {size})", expected, outputs, atol=atol, rtol=rtol
            )
            results["max_abs_diff"][artifact] = max(diff, results["max_abs_diff"].get(artifact, 0.0))
            results["tolerance_ratio"][artifact] = max(ratio, results["tolerance_ratio"].get(artifact, 0.0))
            problems += found
    if problems:
        raise RuntimeFailure(
            "the exported model does not reproduce the in-memory model on a "
            "random batch:\n" + "\n".join(problems)
        )
    if quantized:
        results["quantized"] = quantized
    return results


def _record_quantized(
    quantized: dict[str, Any],
    artifact: str,
    quantize: str,
    size: int,
    expected: list[np.ndarray],
    outputs: list[np.ndarray],
) -> list[str]:
    """Adds a quantized file's figures at one batch size to `quantized`; returns its problems."""
    shapes_ok = [o.shape for o in outputs] == [e.shape for e in expected]
    if not shapes_ok or not all(np.isfinite(o).all() for o in outputs):
        shapes = f"{[o.shape for o in outputs]} (model: {[e.shape for e in expected]})"
        return [f"{artifact} ({quantize}) at batch {size}: outputs of shapes {shapes} or not finite"]
    entry = quantized.setdefault(artifact, {"quantization": quantize, "max_abs_diff": 0.0})
    entry["max_abs_diff"] = max(
        entry["max_abs_diff"], *(max_abs_diff(e, o) for e, o in zip(expected, outputs))
    )
    entry["top1_agreement_random_inputs"] = top1_agreement(expected, outputs)
    return []
