"""Export a built Keras model atomically: SavedModel + `.keras` + manifest.

`export_model` writes into a temporary sibling directory, checks that the
written artifacts reproduce the in-memory model, then swaps it into place; on
any failure the temporary directory is removed and a previous export is left
untouched. TensorFlow/Keras are imported lazily so `import kbuilder` is fast.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import re
import secrets
import shutil
from datetime import datetime, timezone
from typing import Any

from kbuilder.errors import KBuilderError, RuntimeFailure, UsageError

SAVED_MODEL_DIR = "saved_model"
KERAS_FILE = "model.keras"
MANIFEST_FILE = "manifest.json"
SERVING_SIGNATURE = "serving_default"
# Keys export_model adds to the caller's manifest; the caller may not set them.
RESERVED_MANIFEST_KEYS = (
    "created_utc", "kbuilder_version", "keras_version", "keras_backend",
    "tensorflow_version", "files", "check",
)
CHECK_BATCH_SIZE = 2
CHECK_SEED = 0
# The rule every export check uses, elementwise as numpy.testing.assert_allclose does:
#     |exported - expected| <= ATOL + RTOL * |expected|
# An export recomputes the model with other kernels (the SavedModel runs a graph that
# TensorFlow's grappler fuses and oneDNN may block differently from the eager ops; ONNX
# Runtime, LiteRT and another Keras backend have their own), so each dot product's float32
# sum is taken in another order. Its rounding error grows with the layer's fan-in n:
# about sqrt(n) * u relative to the output's size in practice (u = 2**-24 ~ 6e-8), n * u at
# worst. RTOL = 1e-5 ~ 168 u covers sqrt(n) for fan-ins up to 28,000 (the zoo's largest is
# VGG-16's fc6, 7*7*512 = 25,088) and the worst case up to n = 168; LeNet-5's RBF outputs in
# the hundreds differ by 1.5e-5 between eager and SavedModel under oneDNN (AVX-512), which a
# purely absolute 1e-5 wrongly failed. ATOL = 1e-5 keeps unit-scale outputs (probabilities,
# logits near zero, where cancellation makes relative error meaningless) at the strict
# absolute bound.
DEFAULT_ATOL = 1e-5
DEFAULT_RTOL = 1e-5


def export_model(model: Any, directory: str | os.PathLike[str], *, manifest: dict[str, Any],
                 check: bool = True, atol: float = DEFAULT_ATOL,
                 rtol: float = DEFAULT_RTOL) -> pathlib.Path:
    """Writes `saved_model/`, `model.keras` and `manifest.json` into `directory`.

    Returns the absolute path of `directory`. Raises `RuntimeFailure` if
    writing or the reproduction check fails, `UsageError` if `directory` is a
    file or a non-empty directory that is not a previous export (refusing to
    delete a user's data), and `ValueError` for a manifest that is not a
    JSON-serialisable dict or that sets one of `RESERVED_MANIFEST_KEYS`, and
    for a negative or non-finite `atol`/`rtol` (the check: see DEFAULT_RTOL). On the torch backend TensorFlow writes the export
    in a subprocess from the model's `.keras` file (`kbuilder.cross_export`, always checked).
    """
    _validate_manifest(manifest)
    for name, value in (("atol", atol), ("rtol", rtol)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < float("inf"):
            raise ValueError(f"`{name}` must be a finite number >= 0, received: {value!r}")
    target = pathlib.Path(os.path.abspath(os.fspath(directory)))
    _check_replaceable(target)
    import keras

    if keras.backend.backend() == "torch":
        # Keras 3.15 exports from PyTorch through torch.export, which fails on these models
        # (input structure against dynamic shapes): TensorFlow writes it from the .keras file.
        from kbuilder.cross_export import export_via_tensorflow

        return export_via_tensorflow(model, target, manifest=manifest, atol=atol, rtol=rtol)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = _make_staging_dir(target)
    except OSError as error:
        raise RuntimeFailure(f"cannot create export directory next to {target}: {error}") from error
    try:
        model.export(str(staging / SAVED_MODEL_DIR), format="tf_saved_model", verbose=False)
        model.save(str(staging / KERAS_FILE))
        figures = verify_export(model, staging, atol=atol, rtol=rtol) if check else None
        _write_manifest(staging, manifest, None if figures is None else {"atol": atol, "rtol": rtol, **figures})
        _swap_into_place(staging, target)
    except BaseException as error:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(error, KBuilderError) or not isinstance(error, Exception):
            raise
        message = f"export to {target} failed: {type(error).__name__}: {error}"
        raise RuntimeFailure(message) from error
    return target


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


def _check_replaceable(target: pathlib.Path) -> None:
    if not os.path.lexists(target):
        return
    if not target.is_dir():
        raise UsageError(f"cannot export to {target}: it exists and is not a directory")
    # Replacing a directory deletes it; only do that to an earlier export (or
    # an empty directory), never to e.g. a project folder passed by mistake.
    if any(target.iterdir()) and not (target / MANIFEST_FILE).is_file():
        raise UsageError(
            f"refusing to replace {target}: it is not empty and has no {MANIFEST_FILE}, "
            "so it is not a kbuilder export; choose another directory"
        )


def _make_staging_dir(target: pathlib.Path) -> pathlib.Path:
    while True:
        staging = target.with_name(f"{target.name}.tmp-{secrets.token_hex(4)}")
        try:
            # os.mkdir (unlike tempfile.mkdtemp's 0o700) honours the umask, so
            # the final export gets ordinary permissions.
            staging.mkdir()
            return staging
        except FileExistsError:
            continue


def input_structure(model: Any) -> Any:
    """The model's inputs as the structure its `call` expects (tensor/list/dict)."""
    try:
        return model.input  # functional models: keeps a dict of inputs a dict
    except (AttributeError, ValueError):
        inputs = list(getattr(model, "inputs", None) or [])  # Sequential: only .inputs
    if not inputs:
        raise RuntimeFailure(
            "cannot check the export: the model has no defined inputs (build it "
            "from keras.Input), or export with check disabled"
        )
    return inputs[0] if len(inputs) == 1 else inputs


def random_array(tensor: Any, rng: Any) -> Any:
    import keras

    shape = (CHECK_BATCH_SIZE,) + tuple(tensor.shape[1:])
    if any(size is None for size in shape):
        raise RuntimeFailure(f"cannot check the export: input {tensor.name!r} has an unknown "
                             f"dimension {tuple(tensor.shape)}; fix its shape or disable the check")
    dtype = keras.backend.standardize_dtype(tensor.dtype)
    if dtype == "bool" or "int" in dtype:  # ints in [0, 10): safe as embedding ids
        return rng.integers(0, 2 if dtype == "bool" else 10, size=shape).astype(dtype)
    if "float" in dtype:
        return rng.standard_normal(size=shape).astype(dtype)
    raise RuntimeFailure(f"cannot check the export: no random data for input {tensor.name!r} "
                         f"of dtype {dtype}")


def flat_numpy(outputs: Any) -> list[Any]:
    import keras
    import numpy as np

    flat = keras.tree.flatten(outputs)
    return [np.asarray(keras.ops.convert_to_numpy(tensor), "float64") for tensor in flat]


def _saved_model_outputs(path: pathlib.Path, named_inputs: dict[str, Any]) -> list[Any]:
    """Runs the `serving_default` signature, outputs in the model's flat order."""
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
    keys = sorted(result, key=(lambda key: int(key[len("output_"):])) if numbered else None)
    return [result[key].numpy().astype("float64") for key in keys]


def max_abs_diff(expected: Any, actual: Any) -> float:
    import numpy as np

    if expected.shape != actual.shape:
        return float("inf")
    if expected.size == 0:
        return 0.0
    diff = np.abs(expected - actual)
    diff[np.isnan(expected) & np.isnan(actual)] = 0.0  # NaN in both: agree
    diff[np.isnan(diff)] = np.inf  # NaN on one side only: disagree
    return float(diff.max())


def tolerance_ratio(expected: Any, actual: Any, *, atol: float = DEFAULT_ATOL,
                    rtol: float = DEFAULT_RTOL) -> float:
    """max over elements of |actual - expected| / (atol + rtol * |expected|): at most 1 passes.

    inf for a shape mismatch or a NaN on one side only; 0 for NaN on both sides (agree)."""
    import numpy as np

    if expected.shape != actual.shape:
        return float("inf")
    if expected.size == 0:
        return 0.0
    with np.errstate(invalid="ignore"):
        diff = np.abs(expected - actual)
    agree = (np.isnan(expected) & np.isnan(actual)) | (np.isinf(expected) & (expected == actual))
    diff[agree] = 0.0  # NaN on both sides, or the same infinity
    diff[np.isnan(diff)] = np.inf  # NaN (or an infinity) on one side only: disagree
    allowed = atol + rtol * np.abs(np.nan_to_num(expected, nan=0.0, posinf=0.0, neginf=0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(diff == 0, 0.0, diff / allowed)
    return float(ratio.max())


def compare_outputs(artifact: str, expected: list[Any], outputs: list[Any], *,
                    atol: float = DEFAULT_ATOL, rtol: float = DEFAULT_RTOL) -> tuple[float, float, list[str]]:
    """(max abs diff, max tolerance ratio, problems) of one artifact's outputs against the
    model's; a problem names the output, its worst element's difference and the bound."""
    import numpy as np

    problems: list[str] = []
    if len(outputs) != len(expected):
        problems.append(f"{artifact}: {len(outputs)} outputs, the model has {len(expected)}")
    diffs, ratios = [], []
    for index, (e, o) in enumerate(zip(expected, outputs)):
        diff = max_abs_diff(e, o)
        ratio = tolerance_ratio(e, o, atol=atol, rtol=rtol)
        diffs.append(diff)
        ratios.append(ratio)
        if not ratio <= 1.0:  # also catches NaN
            if e.shape != o.shape:
                problems.append(f"{artifact} output {index}: shape {o.shape}, the model's is {e.shape}")
                continue
            scale = float(np.nanmax(np.abs(e))) if e.size else 0.0
            problems.append(
                f"{artifact} output {index}: max abs diff {diff:.3g} exceeds atol {atol:g} + "
                f"rtol {rtol:g} x |expected| (outputs up to {scale:.3g}; worst element at "
                f"{ratio:.3g}x its bound)")
    return max(diffs, default=0.0), max(ratios, default=0.0), problems


def check_batch(model: Any) -> tuple[Any, list[Any], list[Any]]:
    """The seeded random batch exports are checked on: (batch in the model's input
    structure, the input tensors and their arrays, both in flat order)."""
    import keras
    import numpy as np

    structure = input_structure(model)
    rng = np.random.default_rng(CHECK_SEED)
    tensors = keras.tree.flatten(structure)
    arrays = [random_array(tensor, rng) for tensor in tensors]
    return keras.tree.pack_sequence_as(structure, arrays), tensors, arrays


def verify_export(model: Any, directory: pathlib.Path, *, atol: float = DEFAULT_ATOL,
                  rtol: float = DEFAULT_RTOL) -> dict[str, dict[str, float]]:
    """Reloads both artifacts in `directory` and compares them with `model`.

    Runs the in-memory model, `model.keras` (loaded with safe_mode=True) and
    the SavedModel's `serving_default` on one seeded random batch of 2.
    Returns {"max_abs_diff": {artifact: figure}, "tolerance_ratio": {artifact: figure}};
    raises `RuntimeFailure` with the figures if any element exceeds atol + rtol * |expected|.
    """
    import keras

    batch, tensors, arrays = check_batch(model)
    expected = flat_numpy(model(batch, training=False))

    reloaded = keras.saving.load_model(directory / KERAS_FILE, safe_mode=True)
    candidates = {
        KERAS_FILE: flat_numpy(reloaded(batch, training=False)),
        SAVED_MODEL_DIR: _saved_model_outputs(
            directory / SAVED_MODEL_DIR, {t.name: a for t, a in zip(tensors, arrays)}
        ),
    }
    figures: dict[str, dict[str, float]] = {"max_abs_diff": {}, "tolerance_ratio": {}}
    problems: list[str] = []
    for artifact, outputs in candidates.items():
        diff, ratio, found = compare_outputs(artifact, expected, outputs, atol=atol, rtol=rtol)
        figures["max_abs_diff"][artifact] = diff
        figures["tolerance_ratio"][artifact] = ratio
        problems += found
    if problems:
        raise RuntimeFailure("the exported model does not reproduce the in-memory model on a "
                             "random batch:\n" + "\n".join(problems))
    return figures


def _kbuilder_version() -> str:
    import importlib.metadata

    import kbuilder

    try:
        return str(getattr(kbuilder, "__version__", None) or importlib.metadata.version("kbuilder"))
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _hash_and_sync(path: pathlib.Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
        os.fsync(handle.fileno())  # on disk before the rename publishes it
    return digest.hexdigest()


def _write_manifest(staging: pathlib.Path, manifest: dict[str, Any],
                    check: dict[str, Any] | None) -> None:
    import keras
    import tensorflow as tf

    files = {
        path.relative_to(staging).as_posix(): _hash_and_sync(path)
        for path in sorted(staging.rglob("*")) if path.is_file()
    }
    record = dict(manifest)
    record.update({
        "created_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "kbuilder_version": _kbuilder_version(),
        "keras_version": keras.__version__,
        "keras_backend": keras.backend.backend(),
        "tensorflow_version": tf.__version__,
        "files": files,
        "check": check,
    })
    with open(staging / MANIFEST_FILE, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(record, indent=2) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def _swap_into_place(staging: pathlib.Path, target: pathlib.Path) -> None:
    if os.path.lexists(target):
        backup = target.with_name(f"{target.name}.old-{secrets.token_hex(4)}")
        os.rename(target, backup)
        try:
            os.rename(staging, target)
        except BaseException:
            os.rename(backup, target)  # put the previous export back
            raise
        shutil.rmtree(backup, ignore_errors=True)
    else:
        os.rename(staging, target)
    _sync_directory(target.parent)


def _sync_directory(path: pathlib.Path) -> None:
    # Makes the renames durable; not every platform can open/fsync a directory.
    try:
        descriptor = os.open(path, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
    except OSError:
        pass
