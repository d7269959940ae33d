"""Exports that take raw inputs: the training preprocessing in the graph, probabilities out.

A trained run's manifest carries its input contract (kbuilder.train.contract): the raw inputs
as the data source delivered them (MNIST: uint8 28x28) and the preprocessing steps with the
statistics training computed. From it:
- the SavedModel gets a second signature `serving_raw` (raw inputs -> probabilities, class
  ids and class names); `serving_default` stays the bare model;
- ONNX and TFLite get a second file (`model_raw.onnx`, `model_raw.tflite`) of a functional
  model raw inputs -> (probabilities, class ids), when their converters take its ops.

The steps are written with keras.ops in float32, the same arithmetic as the numpy
preprocessing (kbuilder.train.preprocess), so a raw export reproduces the run's figures.
"""

from __future__ import annotations

import pathlib
from typing import Any

import keras
import numpy as np
from keras import ops

from kbuilder.errors import RuntimeFailure
from kbuilder.export.onnx import onnx_outputs, write_onnx
from kbuilder.export.tflite import tflite_outputs, write_tflite

RAW_SIGNATURE = "serving_raw"
RAW_FILES = {"onnx": "model_raw.onnx", "tflite": "model_raw.tflite"}


def has_raw_contract(contract: Any) -> bool:
    """Whether a manifest's input_contract describes raw inputs fully enough to serve them."""
    if not isinstance(contract, dict):
        return False
    raw = contract.get("raw_input") or {}
    shape = raw.get("shape")
    return isinstance(shape, list) and all(isinstance(d, int) for d in shape) and bool(raw.get("dtype"))


def _pad(x: Any, padding: Any, value: float) -> Any:
    p = padding if isinstance(padding, list) else [padding]
    top, bottom, left, right = (p[0],) * 4 if len(p) == 1 else (p[0], p[0], p[1], p[1]) if len(p) == 2 else p
    widths = [(0, 0), (top, bottom), (left, right)] + [(0, 0)] * (len(x.shape) - 3)
    return ops.pad(x, widths, constant_values=value)


def _resize(x: Any, size: list[int], interpolation: str) -> Any:
    squeeze = len(x.shape) == 3
    images = ops.expand_dims(x, -1) if squeeze else x
    out = ops.image.resize(images, tuple(size), interpolation=interpolation)
    return out[..., 0] if squeeze else out


def preprocess_graph(x: Any, steps: list[dict[str, Any]]) -> Any:
    """The contract's steps on a raw batch, in float32 (as kbuilder.train.preprocess does)."""
    x = ops.cast(x, "float32")
    for step in steps:
        kind = step["type"]
        if kind == "rescale":
            x = x * np.float32(step["scale"]) + np.float32(step["offset"])
        elif kind == "normalize":
            mean = np.asarray(step["mean"], "float32")
            std = np.asarray(step["std"], "float32")
            x = (x - mean) / std
        elif kind == "pad":
            x = _pad(x, step["padding"], float(step["value"]))
        elif kind == "resize":
            x = _resize(x, step["size"], step["interpolation"])
        elif kind == "add_channel_axis":
            x = ops.expand_dims(x, -1)
        elif kind == "reshape":
            x = ops.reshape(x, (-1, *step["shape"]))
    return x


def probabilities_graph(outputs: Any, output: dict[str, Any]) -> tuple[Any, Any]:
    """(probabilities, class ids) from the model's outputs as the contract describes them."""
    squash = output.get("to_probabilities")
    if squash == "softmax":
        outputs = ops.softmax(outputs, axis=-1)
    elif squash == "sigmoid":
        outputs = ops.sigmoid(outputs)
    if outputs.shape[-1] == 1:  # one sigmoid unit: P(class 1)
        return outputs, ops.cast(outputs[..., 0] > 0.5, "int64")
    # argmax as min(index where the maximum is): Keras's TensorFlow argmax bitcasts floats
    # (for -0.0), which neither tf2onnx nor TFLite's builtin ops take. Ties: the first class.
    classes = int(outputs.shape[-1])
    top = ops.max(outputs, axis=-1, keepdims=True)
    index = ops.where(ops.equal(outputs, top), np.arange(classes, dtype="int64"), classes)
    return outputs, ops.min(index, axis=-1)


def raw_model(model: keras.Model, contract: dict[str, Any]) -> keras.Model:
    """A functional model: raw inputs -> the training preprocessing -> `model` -> (probabilities,
    class ids). It shares `model`'s layers and weights."""
    raw = contract["raw_input"]
    inputs = keras.Input(shape=tuple(raw["shape"]), dtype=raw["dtype"], name="raw")
    x = preprocess_graph(inputs, contract.get("preprocess") or [])
    model_dtype = (contract.get("model_input") or {}).get("dtype") or "float32"
    probabilities, ids = probabilities_graph(model(ops.cast(x, model_dtype)), contract.get("output") or {})
    return keras.Model(inputs, {"probabilities": probabilities, "class_ids": ids}, name=f"{model.name}_raw")


def write_saved_model_with_raw(model: keras.Model, path: pathlib.Path, contract: dict[str, Any]) -> None:
    """The bare model as `serve`/`serving_default`, plus `serving_raw` (TensorFlow backend)."""
    # Imported here, not at the top, so that `import kbuilder.export` does not load TensorFlow.
    import tensorflow as tf
    from keras.src.export.export_utils import get_input_signature

    archive = keras.export.ExportArchive()
    archive.track_and_add_endpoint("serve", model, get_input_signature(model))
    wrapped = raw_model(model, contract)
    archive.track(wrapped)
    raw = contract["raw_input"]
    names = contract.get("class_names")

    def serving_raw(raw_inputs: Any) -> dict[str, Any]:
        outputs = wrapped(raw_inputs, training=False)
        result = {"probabilities": outputs["probabilities"], "class_ids": outputs["class_ids"]}
        if names:
            result["class_names"] = tf.gather(tf.constant(names), outputs["class_ids"])
        return result

    spec = tf.TensorSpec((None, *raw["shape"]), tf.as_dtype(raw["dtype"]), name="raw")
    archive.add_endpoint(RAW_SIGNATURE, serving_raw, input_signature=[spec])
    archive.write_out(str(path), verbose=False)


def random_raw_batch(contract: dict[str, Any], size: int, seed: int = 0) -> np.ndarray:
    """Raw inputs within the contract's value range, for the check of the raw files."""
    raw = contract["raw_input"]
    low, high = raw.get("range") or (0.0, 1.0)
    rng = np.random.default_rng(seed)
    dtype = np.dtype(raw["dtype"])
    shape = (size, *raw["shape"])
    if np.issubdtype(dtype, np.integer):
        return rng.integers(int(low), int(high) + 1, size=shape).astype(dtype)
    return rng.uniform(low, high, size=shape).astype(dtype)


def write_raw_files(
    model: keras.Model, staging: pathlib.Path, formats: tuple[str, ...], contract: dict[str, Any]
) -> dict[str, Any]:
    """Writes and checks the raw-input variants; returns what the manifest's `raw_inputs` says
    of each format: its signature or file, or why it has only the bare model."""
    wrapped = raw_model(model, contract)
    batch = random_raw_batch(contract, 3)
    expected = ops.convert_to_numpy(wrapped(batch, training=False)["probabilities"])
    record: dict[str, Any] = {}
    if keras.backend.backend() == "tensorflow":
        got = saved_model_raw_probabilities(staging / "saved_model", batch)
        record["saved_model"] = {"signature": RAW_SIGNATURE, "max_abs_diff": _diff(expected, got)}
    for name in formats:
        if name not in RAW_FILES:
            continue
        path = staging / RAW_FILES[name]
        try:
            if name == "onnx":
                write_onnx(wrapped, path)
                outputs = onnx_outputs(path, {"raw": batch})
            else:
                write_tflite(wrapped, path)
                outputs = tflite_outputs(path, {"raw": batch})
            # the outputs in sorted key order: class_ids, probabilities
            probabilities = next(o for o in outputs if o.ndim == expected.ndim and o.shape == expected.shape)
            diff = _diff(expected, probabilities)
            if diff > 1e-4:
                raise RuntimeFailure(f"{path.name} differs from the in-memory model by {diff:.3g}")
            record[name] = {"file": path.name, "max_abs_diff": diff}
        except (RuntimeFailure, StopIteration, ValueError) as error:
            path.unlink(missing_ok=True)
            record[name] = {"file": None, "why": f"{type(error).__name__}: {error}"[:500]}
    return record


def saved_model_raw_probabilities(path: pathlib.Path, batch: np.ndarray) -> np.ndarray:
    import tensorflow as tf  # see write_saved_model_with_raw

    loaded = tf.saved_model.load(str(path))
    return loaded.signatures[RAW_SIGNATURE](raw=tf.constant(batch))["probabilities"].numpy()


def _diff(expected: np.ndarray, actual: np.ndarray) -> float:
    if expected.shape != actual.shape:
        raise RuntimeFailure(
            f"raw-input export gives outputs of shape {actual.shape}, expected {expected.shape}"
        )
    return (
        float(np.max(np.abs(expected.astype("float64") - actual.astype("float64")))) if expected.size else 0.0
    )
