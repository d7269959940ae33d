"""A weights source named by the user -> `SourceTensors`, whatever kbuilder or Keras wrote.

- a directory kbuilder wrote: a run (spec.yaml: its best.keras, else last.keras; an ensemble's
  member is a run), an export (manifest.json: its model.keras);
- a `.keras` file: its model.weights.h5, read out of the zip (config.json is not deserialized:
  weights are matched by the names model.weights.h5 records);
- an HDF5 file (`.weights.h5`, `.h5`, `.hdf5`): Keras 3's layout or the legacy one.

Readers for other suffixes register into READERS (kbuilder.weights.torch_files adds the
PyTorch state_dicts); every file is read as untrusted input (kbuilder.weights.h5_layouts).
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path

import h5py

from kbuilder.storage import rundir as rd
from kbuilder.weights.h5_layouts import Reader, WeightsFileError, read_weights
from kbuilder.weights.tensors import SourceTensors
from kbuilder.weights.torch_files import read_torch

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
KERAS_WEIGHTS_MEMBER = "model.weights.h5"
EXPORT_MANIFEST = "manifest.json"  # kbuilder.export.manifest.MANIFEST_FILE (a package above this one)
EXPORT_MODEL = "model.keras"
ENSEMBLE_PLAN = "plan.json"  # kbuilder.use.targets.ENSEMBLE_PLAN
TORCH_SUFFIXES = (".pt", ".pth", ".safetensors")

SourceReader = Callable[[Path, int], SourceTensors]


def _read_hdf5(path: Path, limit: int) -> SourceTensors:
    with open(path, "rb") as stream:
        head = stream.read(len(HDF5_SIGNATURE))
    if head != HDF5_SIGNATURE:
        raise WeightsFileError(f"{path}: not an HDF5 file (it does not start with HDF5's signature)")
    return _read_open(path, str(path), limit, str(path))


def _read_keras_zip(path: Path, limit: int) -> SourceTensors:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise WeightsFileError(f"{path}: not a .keras file (a zip archive): {exc}") from None
    with archive:
        try:
            info = archive.getinfo(KERAS_WEIGHTS_MEMBER)
        except KeyError:
            raise WeightsFileError(
                f"{path}: no {KERAS_WEIGHTS_MEMBER} inside (not a Keras 3 .keras file)"
            ) from None
        if info.file_size > limit * 8 + (64 << 20):  # float64 at most, plus HDF5's own bookkeeping
            raise WeightsFileError(
                f"{path}: its {KERAS_WEIGHTS_MEMBER} declares {info.file_size:,} bytes, more than "
                f"{limit:,} parameters can take (--max-params or KBUILDER_MAX_PARAMS)"
            )
        try:
            with archive.open(info) as member:
                return _read_open(member, str(path), limit, f"{path} ({KERAS_WEIGHTS_MEMBER})")
        except zipfile.BadZipFile as exc:
            raise WeightsFileError(f"{path}: corrupt zip member {KERAS_WEIGHTS_MEMBER}: {exc}") from None


def _read_open(file: object, path: str, limit: int, shown: str) -> SourceTensors:
    reader = Reader(shown, limit)
    try:
        with h5py.File(file, "r") as handle:
            layout = read_weights(handle, reader)
    except WeightsFileError:
        raise
    except (OSError, KeyError, ValueError, RuntimeError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsFileError(f"{shown}: cannot be read as HDF5 ({first}); truncated or corrupt?") from None
    # h5py lists Keras 3's groups by their keys (conv2d, conv2d_1, ..., dense): not the model's order.
    return SourceTensors(
        path=path, layout="keras", tensors=reader.tensors, layers=reader.layers, ordered=layout == "legacy"
    )


def _read_torch(path: Path, limit: int) -> SourceTensors:
    return read_torch(path, max_values=limit)


READERS: dict[str, SourceReader] = {
    ".keras": _read_keras_zip,
    ".h5": _read_hdf5,
    ".hdf5": _read_hdf5,
    **dict.fromkeys(TORCH_SUFFIXES, _read_torch),
}


def register_reader(suffixes: Iterable[str], reader: SourceReader) -> None:
    """Read files with these suffixes (lowercase, with the dot) by `reader(path, limit)`."""
    for suffix in suffixes:
        READERS[suffix] = reader


def model_file_of(directory: Path) -> Path:
    """The model file in a directory kbuilder wrote: a run's best (else last) model, an export's."""
    if (directory / rd.SPEC_FILE).is_file():
        for name in (rd.BEST_MODEL, rd.LAST_MODEL):
            if (directory / name).is_file():
                return directory / name
        raise WeightsFileError(
            f"{directory}: the run has no {rd.BEST_MODEL} or {rd.LAST_MODEL} (not finished?); "
            f"finish it with `kbuilder train --resume {directory}`"
        )
    if (directory / EXPORT_MANIFEST).is_file() and (directory / EXPORT_MODEL).is_file():
        return directory / EXPORT_MODEL
    if (directory / ENSEMBLE_PLAN).is_file():
        raise WeightsFileError(
            f"{directory}: an ensemble holds several models; give one member's run directory "
            f"(listed in {directory / ENSEMBLE_PLAN})"
        )
    raise WeightsFileError(
        f"{directory}: not a run directory ({rd.SPEC_FILE}) or an export ({EXPORT_MANIFEST} with "
        f"{EXPORT_MODEL}); give one, or a weights file"
    )


def read_source(path: str | Path, limit: int) -> SourceTensors:
    """The tensors of the source at `path`, at most `limit` elements in all."""
    path = Path(path)
    if path.is_dir():
        path = model_file_of(path)
    elif not path.is_file():
        raise WeightsFileError(f"{path}: no such file or directory")
    reader = READERS.get(path.suffix.lower())  # `.weights.h5` is an `.h5`
    if reader is None:
        known = ", ".join(sorted(READERS))
        raise WeightsFileError(f"{path}: unknown weights file type '{path.suffix}'; kbuilder reads {known}")
    return reader(path, limit)
