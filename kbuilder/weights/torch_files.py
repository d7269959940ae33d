"""Reading a PyTorch `state_dict` (`.pt`, `.pth`, `.safetensors`) into named float32 arrays
without running anything the file holds.

A checkpoint is untrusted input: a pickle can call any function while it loads. `.pt`/`.pth`
files are read by `torch.load(weights_only=True)`, whose unpickler builds tensors and plain
containers only and refuses every other global (a `__reduce__` payload, a pickled module),
memory-mapped (`mmap=True`) so a large file is not read twice. What it returns must be a
state_dict (names -> tensors) or one of the common wrappers (`{"state_dict": ...}`,
`{"model": ...}`); `num_batches_tracked` counters are dropped, every other non-float value is
refused. Every refusal is a DataError (exit 2) naming the file and saying how to fix it.
"""

from __future__ import annotations

import pickle
import re
import stat
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from kbuilder.build.budget import max_params_limit
from kbuilder.errors import DataError
from kbuilder.weights.tensors import SourceTensors
from kbuilder.weights.torch_safetensors import read_safetensors

PICKLE_SUFFIXES = (".pt", ".pth")
SAFETENSORS_SUFFIX = ".safetensors"
WRAPPERS = ("state_dict", "model")  # Lightning's and torchvision's reference scripts' checkpoints
DROPPED = "num_batches_tracked"  # batch norm's step counter: not a weight
RESAVE = "save the weights alone: torch.save(model.state_dict(), PATH)"


def is_torch_file(path: str | Path) -> bool:
    return Path(path).suffix.lower() in (*PICKLE_SUFFIXES, SAFETENSORS_SUFFIX)


def read_torch(path: str | Path, *, max_values: int | None = None) -> SourceTensors:
    """The float tensors of a PyTorch state_dict as float32 arrays (bfloat16 and float16
    up-cast), in the file's order. More values than `max_values` (default: the parameter
    limit, `--max-params`/KBUILDER_MAX_PARAMS) are refused before they are read."""
    file = Path(path)
    _check_regular_file(file)
    limit = max_params_limit(max_values)
    suffix = file.suffix.lower()
    if suffix == SAFETENSORS_SUFFIX:
        arrays = read_safetensors(file, limit)
    elif suffix in PICKLE_SUFFIXES:
        arrays = _read_pickled(file, limit)
    else:
        raise DataError(
            f"{file}: not a PyTorch weights file; expected {', '.join(PICKLE_SUFFIXES)} or {SAFETENSORS_SUFFIX}"
        )
    if not arrays:
        raise DataError(f"{file}: holds no float tensors; expected a state_dict ({RESAVE})")
    return SourceTensors(str(file), "torch", arrays)


def _check_regular_file(file: Path) -> None:
    try:
        info = file.stat()
    except OSError as exc:
        raise DataError(f"{file}: cannot read the weights file: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        raise DataError(f"{file}: not a regular file (a folder, device or pipe); give a weights file")
    if info.st_size == 0:
        raise DataError(f"{file}: the weights file is empty")


def _read_pickled(file: Path, limit: int) -> dict[str, np.ndarray]:
    try:
        import torch  # deferred: torch is an optional extra (kbuilder[torch]); only .pt/.pth need it
    except ImportError:
        raise DataError(
            f"{file}: reading a PyTorch checkpoint needs torch: pip install 'kbuilder[torch]' "
            "(or save it as .safetensors, which needs no torch)"
        ) from None
    zipped = zipfile.is_zipfile(file)
    if zipped:
        _check_archive(file, limit)
    try:
        with warnings.catch_warnings():  # torch's notes on pickle protocols: the outcome says enough
            warnings.simplefilter("ignore", UserWarning)
            # mmap maps the storages instead of reading them; the legacy (non-zip) format cannot be mapped
            loaded = torch.load(file, weights_only=True, map_location="cpu", mmap=zipped)
    except pickle.UnpicklingError as exc:
        named = re.search(r"GLOBAL ([\w.]+)", str(exc))
        what = f"it names {named.group(1)}, " if named else ""
        raise DataError(
            f"{file}: holds more than tensors ({what}refused without running it); {RESAVE}"
        ) from None
    except Exception as exc:  # noqa: BLE001  (torch reports a corrupt archive as RuntimeError, EOFError, ...)
        raise DataError(
            f"{file}: not a readable PyTorch checkpoint (truncated or corrupt?): {_first_line(exc)}"
        ) from None
    return _float_arrays(file, _state_dict(file, loaded), limit, torch)


def _check_archive(file: Path, limit: int) -> None:
    """torch.save's zip archive: every member inside the file, the storages under the limit
    (8 bytes a value, float64's width: the loosest bound for float weights)."""
    size = file.stat().st_size
    try:
        with zipfile.ZipFile(file) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise DataError(f"{file}: not a readable PyTorch checkpoint (truncated or corrupt?): {exc}") from None
    for member in members:
        if member.header_offset + member.compress_size > size:
            raise DataError(f"{file}: member '{member.filename}' ends past the end of the file (truncated?)")
    stored = sum(m.file_size for m in members if "/data/" in m.filename)
    if stored > 8 * limit:
        raise DataError(
            f"{file}: its tensors take {stored:,} bytes, more than the limit of {limit:,} parameters; "
            "raise it with --max-params or KBUILDER_MAX_PARAMS if you mean it"
        )


def _state_dict(file: Path, loaded: Any) -> Mapping[Any, Any]:
    if isinstance(loaded, Mapping):
        for key in WRAPPERS:
            if isinstance(loaded.get(key), Mapping):
                return loaded[key]
        return loaded
    raise DataError(f"{file}: holds a {type(loaded).__name__}, not a state_dict (names -> tensors); {RESAVE}")


def _float_arrays(file: Path, state: Mapping[Any, Any], limit: int, torch: Any) -> dict[str, np.ndarray]:
    tensors: dict[str, Any] = {}
    for name, value in state.items():
        if name == "_metadata" or (isinstance(name, str) and name.rsplit(".", 1)[-1] == DROPPED):
            continue
        if not isinstance(name, str) or not isinstance(value, torch.Tensor):
            raise DataError(
                f"{file}: entry {name!r:.60} holds a {type(value).__name__}, not a tensor; "
                f"expected a state_dict (names -> tensors); {RESAVE}"
            )
        if value.layout != torch.strided or value.is_quantized or not value.is_floating_point():
            raise DataError(
                f"{file}: tensor '{name}' holds {str(value.dtype).replace('torch.', '')} values"
                f"{'' if value.layout == torch.strided else ' (sparse)'}; weights must be dense floating point "
                "(float16, bfloat16, float32 or float64)"
            )
        tensors[name] = value
    total = sum(int(t.numel()) for t in tensors.values())
    if total > limit:
        raise DataError(
            f"{file}: holds {total:,} values, more than the limit of {limit:,} parameters; "
            "raise it with --max-params or KBUILDER_MAX_PARAMS if you mean it"
        )
    # A copy, not a view of the mapped file: the arrays outlive it.
    return {name: np.array(t.detach().to(torch.float32).numpy(), copy=True) for name, t in tensors.items()}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
