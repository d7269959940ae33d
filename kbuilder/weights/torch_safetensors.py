"""Reading a `.safetensors` file that may be hostile: its header is checked against the file
before a byte of tensor data is read.

The format is an 8-byte little-endian header length, a JSON header (`{name: {dtype, shape,
data_offsets: [begin, end]}, "__metadata__": {...}}`) and the tensors' bytes. A header longer
than the file, a tensor whose declared shape does not fill its byte range, a range beyond the
file or more values than the parameter limit all become a DataError (exit 2) naming the file.
The tensors are then read with the `safetensors` package (bfloat16, which numpy lacks, from
its raw bytes) and up-cast to float32.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError, safe_open

from kbuilder.errors import DataError

HEADER_LIMIT = 100 << 20  # the safetensors package's own bound on the JSON header
FLOAT_DTYPES = {"F16": 2, "BF16": 2, "F32": 4, "F64": 8}
OTHER_DTYPES = {"BOOL", "U8", "I8", "U16", "I16", "U32", "I32", "U64", "I64", "F8_E4M3", "F8_E5M2"}


def natural_key(name: str) -> list[Any]:
    """`features.10` after `features.2`: digits compare as numbers. A safetensors file does
    not keep the state_dict's order (its writer sorts the tensors by name), so this is the
    order order-matching sees: each `nn.Sequential`'s own order, but attributes sorted by
    name (`classifier` before `features`, `bn1` before `conv1`), which a `map` puts right."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def read_safetensors(file: Path, max_values: int) -> dict[str, np.ndarray]:
    """The float tensors of a `.safetensors` file as float32 arrays, in natural name order."""
    entries, data_start = _checked_header(file, max_values)
    arrays: dict[str, np.ndarray] = {}
    try:
        with safe_open(str(file), framework="numpy") as handle:
            for name in sorted(entries, key=natural_key):
                entry = entries[name]
                if entry["dtype"] == "BF16":
                    arrays[name] = _bfloat16(file, data_start, entry)
                else:
                    arrays[name] = np.asarray(handle.get_tensor(name), dtype=np.float32)
    except (SafetensorError, OSError, ValueError) as exc:
        raise DataError(f"{file}: not a readable .safetensors file: {_first_line(exc)}") from None
    return arrays


def _checked_header(file: Path, max_values: int) -> tuple[dict[str, dict[str, Any]], int]:
    size = file.stat().st_size
    with file.open("rb") as stream:
        prefix = stream.read(8)
        if len(prefix) < 8:
            raise DataError(
                f"{file}: truncated .safetensors file ({size} bytes; the header length alone is 8)"
            )
        length = int.from_bytes(prefix, "little")
        if length > min(size - 8, HEADER_LIMIT):
            raise DataError(
                f"{file}: the .safetensors header declares {length:,} bytes but the file holds "
                f"{size - 8:,} after its length field (truncated or not a .safetensors file)"
            )
        raw = stream.read(length)
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{file}: the .safetensors header is not JSON: {exc}") from None
    if not isinstance(header, dict):
        raise DataError(f"{file}: the .safetensors header is not a mapping of tensor names")
    header.pop("__metadata__", None)
    data_size = size - 8 - length
    total = 0
    for name, entry in header.items():
        total += _check_entry(file, name, entry, data_size)
    if total > max_values:
        raise DataError(
            f"{file}: declares {total:,} values, more than the limit of {max_values:,} parameters; "
            "raise it with --max-params or KBUILDER_MAX_PARAMS if you mean it"
        )
    return header, 8 + length


def _check_entry(file: Path, name: str, entry: Any, data_size: int) -> int:
    """The number of values of one header entry, after checking it fits its bytes and the file."""
    where = f"{file}: tensor '{name}'"
    if not isinstance(entry, dict) or not {"dtype", "shape", "data_offsets"} <= entry.keys():
        raise DataError(f"{where}: expected {{dtype, shape, data_offsets}} in the header, got {entry!r:.80}")
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if dtype not in FLOAT_DTYPES:
        known = dtype in OTHER_DTYPES
        raise DataError(
            f"{where} holds {dtype if known else repr(dtype)} values; weights must be floating point "
            f"({', '.join(FLOAT_DTYPES)}): save the float parameters only"
        )
    if not (isinstance(shape, list) and all(isinstance(d, int) and 0 <= d < 1 << 40 for d in shape)):
        raise DataError(f"{where}: expected a shape of whole numbers, got {shape!r:.80}")
    valid_offsets = (
        isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)
    )
    if not valid_offsets or not 0 <= offsets[0] <= offsets[1]:
        raise DataError(f"{where}: expected data_offsets [begin, end], got {offsets!r:.80}")
    values = math.prod(shape)
    if offsets[1] > data_size:
        raise DataError(
            f"{where} ends at byte {offsets[1]:,} of the data but the file holds {data_size:,} "
            "(truncated or a forged size)"
        )
    if offsets[1] - offsets[0] != values * FLOAT_DTYPES[dtype]:
        raise DataError(
            f"{where}: shape {tuple(shape)} of {dtype} needs {values * FLOAT_DTYPES[dtype]:,} bytes, "
            f"its range holds {offsets[1] - offsets[0]:,}"
        )
    return values


def _bfloat16(file: Path, data_start: int, entry: dict[str, Any]) -> np.ndarray:
    """bfloat16 is the top half of a float32: widen the 16-bit words by 16 zero bits."""
    begin, end = entry["data_offsets"]
    words = np.fromfile(file, dtype="<u2", count=(end - begin) // 2, offset=data_start + begin)
    return (words.astype(np.uint32) << 16).view(np.float32).reshape(entry["shape"])


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
