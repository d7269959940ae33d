"""Export a built Keras model atomically and verified: SavedModel + `.keras` (always), and
on request ONNX and TFLite, with a manifest that lists every file's hash and the check.

`export_model` writes into a staging sibling directory, runs every written file back on
random batches of two sizes and compares it with the in-memory model
(`kbuilder.export_check`), then swaps it into place (`kbuilder.export_atomic`); on any
failure the staging directory is removed and a previous export is left untouched.
TensorFlow/Keras are imported lazily so `import kbuilder` is fast.
"""

from __future__ import annotations

import errno
import json
import os
import pathlib
import shutil
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from kbuilder import export_check
from kbuilder.errors import KBuilderError, RuntimeFailure
from kbuilder.export_atomic import (
    MANIFEST_FILE,
    check_replaceable,
    file_sha256,
    make_staging_dir,
    remove_stale_siblings,
    swap_into_place,
)
from kbuilder.export_check import (
    CHECK_BATCH_SIZES,
    DEFAULT_ATOL,
    DEFAULT_RTOL,
    check_batch,
    compare_outputs,
    flat_numpy,
    input_structure,
    max_abs_diff,
)
from kbuilder.export_onnx import ONNX_FILE
from kbuilder.export_tflite import QUANTIZATIONS, TFLITE_FILE

SAVED_MODEL_DIR = "saved_model"
KERAS_FILE = "model.keras"
# The file (or folder) each format writes; the first two are always written.
FORMAT_FILES = {"saved_model": SAVED_MODEL_DIR, "keras": KERAS_FILE, "onnx": ONNX_FILE, "tflite": TFLITE_FILE}
DEFAULT_FORMATS = ("saved_model", "keras")
# Keys export_model adds to the caller's manifest; the caller may not set them.
RESERVED_MANIFEST_KEYS = (
    "created_utc",
    "kbuilder_version",
    "keras_version",
    "keras_backend",
    "tensorflow_version",
    "files",
    "check",
    "formats",
    "tflite_quantization",
)


def export_model(
    model: Any,
    directory: str | os.PathLike[str],
    *,
    manifest: dict[str, Any],
    check: bool = True,
    atol: float = DEFAULT_ATOL,
    rtol: float = DEFAULT_RTOL,
    formats: Sequence[str] = DEFAULT_FORMATS,
    quantize: str = "none",
    calibration: list[Any] | None = None,
) -> pathlib.Path:
    """Writes the formats' files and `manifest.json` into `directory`; returns its absolute path.

    `formats` adds "onnx" and/or "tflite" to the SavedModel and `.keras` file; `quantize`
    ("float16"/"int8") applies to the TFLite file, int8 calibrated on `calibration` (one
    array of samples per model input). Raises `RuntimeFailure` if writing or the check
    fails (also for a format that cannot carry one of the model's layers), `UsageError` if
    `directory` is a file or a non-empty directory that is not an intact kbuilder export,
    and `ValueError` for a bad manifest, tolerance, format or quantization. On the torch
    backend (and for ONNX/TFLite on JAX) TensorFlow writes the export in a subprocess from
    the model's `.keras` file (`kbuilder.cross_export`, always checked).
    """
    _validate_manifest(manifest)
    for name, value in (("atol", atol), ("rtol", rtol)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < float("inf"):
            raise ValueError(f"`{name}` must be a finite number >= 0, received: {value!r}")
    chosen = normalize_formats(formats)
    if quantize not in QUANTIZATIONS or (quantize != "none" and "tflite" not in chosen):
        raise ValueError(
            f"`quantize` must be one of {QUANTIZATIONS} and needs the tflite format, received: {quantize!r}"
        )
    target = pathlib.Path(os.path.abspath(os.fspath(directory)))
    check_replaceable(target)
    remove_stale_siblings(target)
    import keras

    backend = keras.backend.backend()
    if backend == "torch" or (backend != "tensorflow" and set(chosen) - set(DEFAULT_FORMATS)):
        # Keras 3.15 exports from PyTorch through torch.export, which fails on these models
        # (input structure against dynamic shapes), and ONNX/TFLite convert TensorFlow
        # graphs: TensorFlow writes them from the .keras file.
        from kbuilder.cross_export import export_via_tensorflow

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
        _write_formats(model, staging, chosen, quantize, calibration)
        results = (
            verify_export(model, staging, formats=chosen, quantize=quantize, atol=atol, rtol=rtol)
            if check
            else None
        )
        record = {
            **manifest,
            "formats": list(chosen),
            "tflite_quantization": quantize if "tflite" in chosen else None,
        }
        _write_manifest(staging, record, None if results is None else {"atol": atol, "rtol": rtol, **results})
        swap_into_place(staging, target)
    except BaseException as error:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(error, KBuilderError) or not isinstance(error, Exception):
            raise
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            raise RuntimeFailure(
                f"export to {target} failed: no space left on the device ({error.strerror}); the "
                "partial files were removed and the previous export, if any, is unchanged"
            ) from error
        raise RuntimeFailure(f"export to {target} failed: {type(error).__name__}: {error}") from error
    return target


def normalize_formats(formats: Sequence[str]) -> tuple[str, ...]:
    """The default pair plus the requested formats, in FORMAT_FILES order; ValueError for an
    unknown one."""
    if isinstance(formats, str):
        formats = [formats]
    unknown = [name for name in formats if name not in FORMAT_FILES]
    if unknown:
        raise ValueError(f"unknown export format {unknown[0]!r}; choose from {', '.join(FORMAT_FILES)}")
    return tuple(name for name in FORMAT_FILES if name in DEFAULT_FORMATS or name in formats)


def _write_formats(
    model: Any, staging: pathlib.Path, formats: tuple[str, ...], quantize: str, calibration: list[Any] | None
) -> None:
    model.export(str(staging / SAVED_MODEL_DIR), format="tf_saved_model", verbose=False)
    model.save(str(staging / KERAS_FILE))
    if "onnx" in formats:
        from kbuilder.export_onnx import write_onnx

        write_onnx(model, staging / ONNX_FILE)
    if "tflite" in formats:
        from kbuilder.export_tflite import write_tflite

        samples = None
        if calibration is not None:
            samples = ([array[i : i + 1] for array in calibration] for i in range(len(calibration[0])))
        write_tflite(model, staging / TFLITE_FILE, quantize=quantize, calibration=samples)


def _validate_manifest(manifest: Any) -> None:
    if not isinstance(manifest, dict):
        raise ValueError(f"`manifest` must be a dict, received: {type(manifest).__name__}")
    clashes = sorted(set(manifest) & set(RESERVED_MANIFEST_KEYS))
    if clashes:
        raise ValueError(f"`manifest` must not set keys reserved for export_model: {clashes}")
    try:
        json.dumps(manifest, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ValueError(f"`manifest` must be JSON-serialisable: {error}") from error


def _artifact_runners(
    directory: pathlib.Path, formats: tuple[str, ...], tensors: list[Any]
) -> dict[str, Any]:
    """For each written file, a function from the flat input arrays to its flat outputs."""
    import keras

    reloaded = keras.saving.load_model(directory / KERAS_FILE, safe_mode=True)

    def named(arrays: list[Any]) -> dict[str, Any]:
        return {tensor.name: array for tensor, array in zip(tensors, arrays)}

    runners = {
        KERAS_FILE: lambda arrays: flat_numpy(
            reloaded(keras.tree.pack_sequence_as(input_structure(reloaded), arrays), training=False)
        ),
        SAVED_MODEL_DIR: lambda arrays: export_check.saved_model_outputs(  # looked up late: tests patch it
            directory / SAVED_MODEL_DIR, named(arrays)
        ),
    }
    if "onnx" in formats:
        from kbuilder.export_onnx import onnx_outputs

        runners[ONNX_FILE] = lambda arrays: onnx_outputs(directory / ONNX_FILE, named(arrays))
    if "tflite" in formats:
        from kbuilder.export_tflite import tflite_outputs

        runners[TFLITE_FILE] = lambda arrays: tflite_outputs(directory / TFLITE_FILE, named(arrays))
    return runners


def verify_export(
    model: Any,
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
    file; raises `RuntimeFailure` naming every file and output that exceeds
    max(atol, rtol * the sample's largest |expected|) (kbuilder.export_check; a quantized file: wrong shapes or non-finite outputs).
    """
    import numpy as np

    from kbuilder.export_tflite import top1_agreement

    formats = normalize_formats(formats)
    results: dict[str, Any] = {
        "batch_sizes": list(CHECK_BATCH_SIZES),
        "max_abs_diff": {},
        "tolerance_ratio": {},
    }
    quantized: dict[str, Any] = {}
    problems: list[str] = []
    runners = None
    for size in CHECK_BATCH_SIZES:
        batch, tensors, arrays = check_batch(model, size)
        expected = flat_numpy(model(batch, training=False))
        runners = runners or _artifact_runners(directory, formats, tensors)
        for artifact, run in runners.items():
            outputs = run(arrays)
            if artifact == TFLITE_FILE and quantize != "none":
                shapes_ok = [o.shape for o in outputs] == [e.shape for e in expected]
                if not shapes_ok or not all(np.isfinite(o).all() for o in outputs):
                    problems.append(
                        f"{artifact} ({quantize}) at batch {size}: outputs of shapes "
                        f"{[o.shape for o in outputs]} (model: {[e.shape for e in expected]}) "
                        "or not finite"
                    )
                    continue
                entry = quantized.setdefault(artifact, {"quantization": quantize, "max_abs_diff": 0.0})
                entry["max_abs_diff"] = max(
                    entry["max_abs_diff"], *(max_abs_diff(e, o) for e, o in zip(expected, outputs))
                )
                entry["top1_agreement_random_inputs"] = top1_agreement(expected, outputs)
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


def _kbuilder_version() -> str:
    import importlib.metadata

    import kbuilder

    try:
        return str(getattr(kbuilder, "__version__", None) or importlib.metadata.version("kbuilder"))
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _write_manifest(staging: pathlib.Path, manifest: dict[str, Any], check: dict[str, Any] | None) -> None:
    import keras
    import tensorflow as tf

    files = {
        path.relative_to(staging).as_posix(): file_sha256(path, sync=True)
        for path in sorted(staging.rglob("*"))
        if path.is_file()
    }
    record = dict(manifest)
    record.update(
        {
            "created_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "kbuilder_version": _kbuilder_version(),
            "keras_version": keras.__version__,
            "keras_backend": keras.backend.backend(),
            "tensorflow_version": tf.__version__,
            "files": files,
            "check": check,
        }
    )
    with open(staging / MANIFEST_FILE, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(record, indent=2) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
