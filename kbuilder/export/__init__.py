"""Export a built Keras model atomically and verified: SavedModel + `.keras` (always), and
on request ONNX and TFLite, with a manifest that lists every file's hash and the check.

`export_model` writes into a staging sibling directory, runs every written file back on
random batches of two sizes and compares it with the in-memory model (`verify`), then
swaps it into place (`kbuilder.storage.swap`); on any failure the staging directory is
removed and a previous export is left untouched.

The package: `formats` (the registry: one entry per format with its file, writer and the
runner the check uses), `check` (the tolerance rule and the comparison), `verify`,
`manifest` (what manifest.json holds; which directories may be replaced), `onnx` and
`tflite` (the optional formats: their extras are imported only when used), and
`cross_backend` (torch/JAX models exported by TensorFlow in a subprocess, `__main__`).
"""

from __future__ import annotations

import errno
import importlib.util
import json
import os
import pathlib
import shutil
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from kbuilder.errors import KBuilderError, RuntimeFailure, UsageError
from kbuilder.export.check import DEFAULT_ATOL, DEFAULT_RTOL, tolerance_ratio
from kbuilder.export.cross_backend import export_via_tensorflow
from kbuilder.export.formats import (
    DEFAULT_FORMATS,
    FORMAT_FILES,
    FORMATS,
    KERAS_FILE,
    SAVED_MODEL_DIR,
    ExportFormat,
    WriteOptions,
    normalize_formats,
)
from kbuilder.export.manifest import (
    MANIFEST_FILE,
    RESERVED_MANIFEST_KEYS,
    check_replaceable,
    stamped,
    validate_manifest,
)
from kbuilder.export.raw import has_raw_contract, write_raw_files
from kbuilder.export.tflite import QUANTIZATIONS
from kbuilder.export.verify import verify_export
from kbuilder.storage.swap import make_staging_dir, remove_stale_siblings, swap_into_place

# The modules each optional format's extra installs (pyproject.toml's optional dependencies).
EXTRA_MODULES = {"onnx": ("tf2onnx", "onnx", "onnxruntime"), "tflite": ("ai_edge_litert",)}

__all__ = [
    "DEFAULT_ATOL",
    "DEFAULT_FORMATS",
    "DEFAULT_RTOL",
    "FORMATS",
    "FORMAT_FILES",
    "KERAS_FILE",
    "MANIFEST_FILE",
    "QUANTIZATIONS",
    "RESERVED_MANIFEST_KEYS",
    "SAVED_MODEL_DIR",
    "ExportFormat",
    "export_model",
    "normalize_formats",
    "tolerance_ratio",
    "verify_export",
]


def export_model(
    model: keras.Model,
    directory: str | os.PathLike[str],
    *,
    manifest: dict[str, Any],
    check: bool = True,
    atol: float = DEFAULT_ATOL,
    rtol: float = DEFAULT_RTOL,
    formats: Sequence[str] = DEFAULT_FORMATS,
    quantize: str = "none",
    calibration: list[np.ndarray] | None = None,
) -> pathlib.Path:
    """Writes the formats' files and `manifest.json` into `directory`; returns its absolute path.

    `formats` adds "onnx" and/or "tflite" to the SavedModel and `.keras` file; `quantize`
    ("float16"/"int8") applies to the TFLite file, int8 calibrated on `calibration` (one
    array of samples per model input; `kbuilder.train.calibration.spec_samples` reads them
    from a spec's data). Raises `RuntimeFailure` if writing or the check fails (also for a
    format that cannot carry one of the model's layers), `UsageError` if `directory` is a
    file or a non-empty directory that is not an intact kbuilder export, and `ValueError`
    for a bad manifest, tolerance, format or quantization. On the torch backend (and for
    ONNX/TFLite on JAX) TensorFlow writes the export in a subprocess from the model's
    `.keras` file (`kbuilder.export.cross_backend`, always checked).
    """
    chosen = _checked_arguments(manifest, atol, rtol, formats, quantize)
    target = pathlib.Path(os.path.abspath(os.fspath(directory)))
    check_replaceable(target)
    remove_stale_siblings(target)
    backend = keras.backend.backend()
    if backend == "torch" or (backend != "tensorflow" and set(chosen) - set(DEFAULT_FORMATS)):
        # Keras 3.15 exports from PyTorch through torch.export, which fails on these models
        # (input structure against dynamic shapes), and ONNX/TFLite convert TensorFlow
        # graphs: TensorFlow writes them from the .keras file.
        return export_via_tensorflow(
            model,
            target,
            manifest=manifest,
            atol=atol,
            rtol=rtol,
            formats=chosen,
            quantize=quantize,
            calibration=calibration,
        )
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = make_staging_dir(target)
    except OSError as error:
        raise RuntimeFailure(f"cannot create export directory next to {target}: {error}") from error
    try:
        contract = manifest.get("input_contract")
        options = WriteOptions(quantize=quantize, calibration=calibration, contract=contract)
        for name in chosen:
            entry = FORMATS[name]
            entry.write(model, staging / entry.file, options)
        raw_inputs = (
            write_raw_files(model, staging, chosen, contract)
            if isinstance(contract, dict) and has_raw_contract(contract)
            else None
        )
        results = (
            verify_export(model, staging, formats=chosen, quantize=quantize, atol=atol, rtol=rtol)
            if check
            else None
        )
        record = {
            **manifest,
            "formats": list(chosen),
            "tflite_quantization": quantize if "tflite" in chosen else None,
            "raw_inputs": raw_inputs,
        }
        _write_manifest(staging, record, None if results is None else {"atol": atol, "rtol": rtol, **results})
        swap_into_place(staging, target)
    except BaseException as error:
        shutil.rmtree(staging, ignore_errors=True)
        failure = _failure(error, target)
        if failure is None:
            raise
        raise failure from error
    return target


def _checked_arguments(
    manifest: Any, atol: Any, rtol: Any, formats: Sequence[str], quantize: str
) -> tuple[str, ...]:
    """The formats to write; ValueError for a bad manifest, tolerance, format or quantization."""
    validate_manifest(manifest)
    for name, value in (("atol", atol), ("rtol", rtol)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < float("inf"):
            raise ValueError(f"`{name}` must be a finite number >= 0, received: {value!r}")
    chosen = normalize_formats(formats)
    for name in chosen:
        missing = [
            module for module in EXTRA_MODULES.get(name, ()) if importlib.util.find_spec(module) is None
        ]
        if missing:
            raise UsageError(
                f"the {name} export needs the '{name}' extra ({', '.join(missing)} is not installed): "
                f'pip install "kbuilder[{name}]"'
            )
    if quantize not in QUANTIZATIONS or (quantize != "none" and "tflite" not in chosen):
        raise ValueError(
            f"`quantize` must be one of {QUANTIZATIONS} and needs the tflite format, received: {quantize!r}"
        )
    return chosen


def _failure(error: BaseException, target: pathlib.Path) -> RuntimeFailure | None:
    """The RuntimeFailure a failed export raises instead of `error` (a full disk says the
    previous export is unchanged); None for our own errors and interrupts, raised as they are."""
    if isinstance(error, KBuilderError) or not isinstance(error, Exception):
        return None
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return RuntimeFailure(
            f"export to {target} failed: no space left on the device ({error.strerror}); the "
            "partial files were removed and the previous export, if any, is unchanged"
        )
    return RuntimeFailure(f"export to {target} failed: {type(error).__name__}: {error}")


def _write_manifest(staging: pathlib.Path, manifest: dict[str, Any], check: dict[str, Any] | None) -> None:
    """The last file of the staging directory. A plain write, not storage.atomic's rename:
    nobody reads the staging directory, and the swap publishes it whole."""
    record = stamped(staging, manifest, check)
    with open(staging / MANIFEST_FILE, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(record, indent=2) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
