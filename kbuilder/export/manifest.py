"""An export's `manifest.json`: what the caller records, what the export adds (versions,
every file's SHA-256, the check's figures), and reading it back to tell an intact kbuilder
export, which a new export may replace, from a directory that holds someone else's files.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import pathlib
from datetime import UTC, datetime
from typing import Any

import keras

import kbuilder
from kbuilder.errors import UsageError

MANIFEST_FILE = "manifest.json"
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
    "raw_inputs",
)


def validate_manifest(manifest: Any) -> None:
    """ValueError unless `manifest` is a JSON-serialisable dict without reserved keys."""
    if not isinstance(manifest, dict):
        # ValueError, as for every other bad argument of export_model (callers catch that one).
        raise ValueError(f"`manifest` must be a dict, received: {type(manifest).__name__}")
    clashes = sorted(set(manifest) & set(RESERVED_MANIFEST_KEYS))
    if clashes:
        raise ValueError(f"`manifest` must not set keys reserved for export_model: {clashes}")
    try:
        json.dumps(manifest, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ValueError(f"`manifest` must be JSON-serialisable: {error}") from error


def stamped(staging: pathlib.Path, manifest: dict[str, Any], check: dict[str, Any] | None) -> dict[str, Any]:
    """`manifest` plus the versions, the time, the check and the hash of every file in
    `staging` (each fsynced as it is hashed: on disk before the swap publishes it)."""
    # Imported here, not at the top, so that `import kbuilder.export` does not load TensorFlow:
    # a torch process hands its export to a TensorFlow subprocess (cross_backend) and never runs this.
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
    return record


def _kbuilder_version() -> str:
    try:
        return str(getattr(kbuilder, "__version__", None) or importlib.metadata.version("kbuilder"))
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def file_sha256(path: pathlib.Path, *, sync: bool = False) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
        if sync:
            os.fsync(handle.fileno())  # on disk before the swap publishes it
    return digest.hexdigest()


def check_replaceable(target: pathlib.Path) -> None:
    """Refuses (UsageError) a target that is a file, or a non-empty directory that is not
    an intact kbuilder export: its manifest must be ours and list exactly its files, with
    matching hashes. Replacing deletes the directory, so anything else is the user's."""
    if not os.path.lexists(target):
        return
    if target.is_symlink() or not target.is_dir():
        kind = "a symbolic link" if target.is_symlink() else "not a directory"
        raise UsageError(f"cannot export to {target}: it exists and is {kind}")
    if not any(target.iterdir()):
        return
    problem = _not_an_export(target)
    if problem:
        raise UsageError(
            f"refusing to replace {target}: {problem}, so it is not a kbuilder "
            "export (replacing it would delete its files); choose another directory"
        )


def _not_an_export(target: pathlib.Path) -> str | None:
    manifest_path = target / MANIFEST_FILE
    if not manifest_path.is_file():
        return f"it is not empty and has no {MANIFEST_FILE}"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        return f"its {MANIFEST_FILE} is not readable JSON ({type(error).__name__})"
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not (
        isinstance(files, dict)
        and "kbuilder_version" in manifest
        and all(isinstance(v, str) for v in files.values())
    ):
        return f"its {MANIFEST_FILE} is not a kbuilder export manifest"
    present = {
        p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file() or p.is_symlink()
    } - {MANIFEST_FILE}
    extra = sorted(present - set(files))
    if extra:
        return f"it holds files its {MANIFEST_FILE} does not list ({', '.join(extra[:3])})"
    for name, digest in files.items():
        path = target / name
        if path.is_symlink() or not path.is_file() or file_sha256(path) != digest:
            return f"{name} is missing or differs from its hash in {MANIFEST_FILE}"
    return None
