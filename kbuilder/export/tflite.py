"""The TFLite (LiteRT) format: Keras's `model.export(format="litert")`, run back through
`ai_edge_litert`'s interpreter for the export check.

Only TFLite's builtin ops are allowed. Keras's default also admits "select TensorFlow ops",
which write a file that only runs with the Flex delegate (absent from ai-edge-litert and
from most phones); a layer that needs one makes the conversion fail, and the export is
refused with the converter's reason instead of writing a file a device cannot run.

Quantization (post-training): `float16` stores weights as float16 (computed in float32);
`int8` quantizes weights and activations to int8, calibrated on real samples
(representative dataset), with float32 inputs and outputs and float fallback for ops
without an int8 kernel. A quantized file cannot match float32 within the export
tolerance: its check is that it runs at both batch sizes and gives finite outputs of the
model's shapes, and the manifest records its max abs difference and top-1 agreement.
"""

from __future__ import annotations

import pathlib
import re
from collections.abc import Iterable
from typing import Any

import keras
import numpy as np

from kbuilder.backend import native_lines_hidden
from kbuilder.errors import RuntimeFailure, UsageError
from kbuilder.export.check import match_inputs

TFLITE_FILE = "model.tflite"
QUANTIZATIONS = ("none", "float16", "int8")


def write_tflite(
    model: keras.Model,
    path: pathlib.Path,
    *,
    quantize: str = "none",
    calibration: Iterable[list[np.ndarray]] | None = None,
) -> None:
    """Converts `model` to a TFLite file at `path` (builtin ops only); int8 is calibrated on
    `calibration`, one list (a batch of one sample per model input) per step."""
    # Imported here, not at the top, so that `import kbuilder.export` does not load TensorFlow:
    # a torch or JAX process hands a TFLite export to a TensorFlow subprocess (cross_backend).
    import tensorflow as tf

    if quantize not in QUANTIZATIONS:
        raise UsageError(f"unknown quantization '{quantize}'; choose one of {', '.join(QUANTIZATIONS)}")
    options: dict[str, Any] = {"target_spec": {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS]}}
    if quantize == "float16":
        options["optimizations"] = [tf.lite.Optimize.DEFAULT]
        options["target_spec"]["supported_types"] = [tf.float16]
    elif quantize == "int8":
        if calibration is None:
            raise UsageError("int8 quantization needs calibration samples: the spec's train.data")
        samples = list(calibration)
        options["optimizations"] = [tf.lite.Optimize.DEFAULT]
        options["representative_dataset"] = lambda: iter(samples)
    try:
        # The converter logs its settings ("fully_quantize: 0, inference_type: 6, ...") on
        # file descriptor 2; kept only when it fails.
        with native_lines_hidden():
            model.export(str(path), format="litert", verbose=False, **options)
    except Exception as error:  # the converter raises its own ConverterError, or others
        text = str(error)
        ops = sorted(set(re.findall(r"'tf\.(\w+)' op", text)) | set(re.findall(r"\btf\.(\w+)\(", text)))
        where = sorted(set(re.findall(r'fused\["\w+:", "([^"@]+)/\w+@', text)))[:3]
        detail = (
            f"TensorFlow op(s) {', '.join(ops)}" + (f" in {', '.join(where)}" if where else "")
            if ops
            else " ".join(text.split())[:400]
        )
        raise RuntimeFailure(
            f"TFLite cannot carry this model: {detail} have no TFLite builtin op (a layer TFLite "
            "lacks; select-TF ops would need the Flex delegate, which devices do not ship); "
            "nothing was written. Export it without --format tflite"
        ) from error


def tflite_outputs(path: pathlib.Path, named_inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Runs the TFLite file's signature on one batch (inputs by the model's input names);
    outputs in the model's flat order (output_0, output_1, ... as in the SavedModel)."""
    # The optional `tflite` extra: `import kbuilder.export` works without it.
    from ai_edge_litert.interpreter import Interpreter

    # "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." otherwise: LiteRT writes it
    # when the delegate is applied, which is at the first run, not when the file is opened.
    with native_lines_hidden():
        interpreter = Interpreter(model_path=str(path))
        runner = interpreter.get_signature_runner()
        feeds = match_inputs(list(runner.get_input_details()), named_inputs, "TFLite file")
        result = runner(**{name: np.asarray(array) for name, array in feeds.items()})
    keys = sorted(result, key=_output_order)
    return [np.asarray(result[key], "float64") for key in keys]


def _output_order(key: str) -> tuple[int, Any]:
    match = re.fullmatch(r"output_(\d+)", key)
    return (0, int(match.group(1))) if match else (1, key)


def top1_agreement(expected: list[np.ndarray], actual: list[np.ndarray]) -> float | None:
    """Share of samples whose argmax (last axis) agrees, over every output; None if no
    output is a vector per sample."""
    agreements = [
        float(np.mean(np.argmax(e, -1) == np.argmax(a, -1)))
        for e, a in zip(expected, actual)
        if e.ndim >= 2 and e.shape == a.shape and e.shape[-1] > 1
    ]
    return min(agreements) if agreements else None
