"""The export formats, one registry entry each: the file (or folder) it writes in the export
directory, its writer, and how the export check runs that file back.

Adding a format is one entry here (plus its module, like `onnx.py` or `tflite.py`): the
export writes, verifies and lists it in the manifest through this table alone. SavedModel
and the `.keras` file are always written; the others on request.
"""

from __future__ import annotations

import pathlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import keras
import numpy as np

from kbuilder.errors import RuntimeFailure
from kbuilder.export.check import flat_numpy, input_structure
from kbuilder.export.onnx import ONNX_FILE, onnx_outputs, write_onnx
from kbuilder.export.raw import has_raw_contract, write_saved_model_with_raw
from kbuilder.export.tflite import TFLITE_FILE, tflite_outputs, write_tflite

SAVED_MODEL_DIR = "saved_model"
KERAS_FILE = "model.keras"
SERVING_SIGNATURE = "serving_default"

# A written file as a function: the model's flat input arrays -> its flat output arrays.
Runner = Callable[[list[np.ndarray]], list[np.ndarray]]


@dataclass(frozen=True)
class WriteOptions:
    """What a writer may need beyond the model: the TFLite quantization ("none", "float16",
    "int8") and int8's calibration samples (one array of samples per model input)."""

    quantize: str = "none"
    calibration: list[np.ndarray] | None = None
    contract: dict | None = None  # a trained run's input contract: the SavedModel adds serving_raw


@dataclass(frozen=True)
class ExportFormat:
    """One export format: what it writes, how, and how the check runs it back."""

    name: str  # as in `formats=` and the manifest's "formats"
    file: str  # the file or folder it writes in the export directory
    write: Callable[[keras.Model, pathlib.Path, WriteOptions], None]
    # Opens the written file (given the model's input names) as a Runner for the check.
    open: Callable[[pathlib.Path, list[str]], Runner]
    always: bool = False  # written on every export


def saved_model_outputs(path: pathlib.Path, named_inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Runs the `serving_default` signature, outputs in the model's flat order."""
    # Imported here, not at the top, so that `import kbuilder.export` does not load TensorFlow:
    # a torch process hands its export to a TensorFlow subprocess (cross_backend) and never runs this.
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))  # must outlive the call: owns the variables
    if SERVING_SIGNATURE not in loaded.signatures:
        raise RuntimeFailure(f"the SavedModel has no '{SERVING_SIGNATURE}' signature")
    signature = loaded.signatures[SERVING_SIGNATURE]
    expected_names = sorted(signature.structured_input_signature[1])
    if sorted(named_inputs) != expected_names:
        if len(named_inputs) == 1 and len(expected_names) == 1:
            named_inputs = {expected_names[0]: next(iter(named_inputs.values()))}
        else:
            raise RuntimeFailure(
                f"the SavedModel signature takes inputs {expected_names}, the model "
                f"has {sorted(named_inputs)}"
            )
    result = signature(**{name: tf.constant(value) for name, value in named_inputs.items()})
    # Keras names positional outputs output_0, output_1, ...; dict outputs keep
    # their keys, which keras.tree.flatten orders by sorted key as well.
    numbered = all(re.fullmatch(r"output_\d+", key) for key in result)
    keys = sorted(result, key=(lambda key: int(key[len("output_") :])) if numbered else None)
    return [result[key].numpy().astype("float64") for key in keys]


def _write_saved_model(model: keras.Model, path: pathlib.Path, options: WriteOptions) -> None:
    if has_raw_contract(options.contract) and keras.backend.backend() == "tensorflow":
        write_saved_model_with_raw(model, path, options.contract or {})
        return
    model.export(str(path), format="tf_saved_model", verbose=False)


def _open_saved_model(path: pathlib.Path, names: list[str]) -> Runner:
    # saved_model_outputs is looked up at each call: tests replace it to fake a mismatch.
    return lambda arrays: saved_model_outputs(path, dict(zip(names, arrays)))


def _write_keras(model: keras.Model, path: pathlib.Path, options: WriteOptions) -> None:
    model.save(str(path))


def _open_keras(path: pathlib.Path, names: list[str]) -> Runner:
    reloaded = keras.saving.load_model(path, safe_mode=True)  # once for every check batch
    structure = input_structure(reloaded)
    return lambda arrays: flat_numpy(reloaded(keras.tree.pack_sequence_as(structure, arrays), training=False))


def _write_onnx(model: keras.Model, path: pathlib.Path, options: WriteOptions) -> None:
    write_onnx(model, path)


def _open_onnx(path: pathlib.Path, names: list[str]) -> Runner:
    return lambda arrays: onnx_outputs(path, dict(zip(names, arrays)))


def _write_tflite(model: keras.Model, path: pathlib.Path, options: WriteOptions) -> None:
    calibration = options.calibration
    samples = None
    if calibration is not None:  # the converter takes one sample (a batch of one) per step
        samples = ([array[i : i + 1] for array in calibration] for i in range(len(calibration[0])))
    write_tflite(model, path, quantize=options.quantize, calibration=samples)


def _open_tflite(path: pathlib.Path, names: list[str]) -> Runner:
    return lambda arrays: tflite_outputs(path, dict(zip(names, arrays)))


FORMATS: dict[str, ExportFormat] = {
    entry.name: entry
    for entry in (
        ExportFormat("saved_model", SAVED_MODEL_DIR, _write_saved_model, _open_saved_model, always=True),
        ExportFormat("keras", KERAS_FILE, _write_keras, _open_keras, always=True),
        ExportFormat("onnx", ONNX_FILE, _write_onnx, _open_onnx),
        ExportFormat("tflite", TFLITE_FILE, _write_tflite, _open_tflite),
    )
}
# The file (or folder) each format writes, and the formats every export has.
FORMAT_FILES = {name: entry.file for name, entry in FORMATS.items()}
DEFAULT_FORMATS = tuple(name for name, entry in FORMATS.items() if entry.always)


def normalize_formats(formats: Sequence[str]) -> tuple[str, ...]:
    """The default pair plus the requested formats, in FORMATS order; ValueError for an
    unknown one."""
    if isinstance(formats, str):
        formats = [formats]
    unknown = [name for name in formats if name not in FORMATS]
    if unknown:
        raise ValueError(f"unknown export format {unknown[0]!r}; choose from {', '.join(FORMATS)}")
    return tuple(name for name in FORMATS if name in DEFAULT_FORMATS or name in formats)
