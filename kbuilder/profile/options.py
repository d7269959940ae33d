"""What `kbuilder profile` is asked for, checked before Keras loads (no Keras import here)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from kbuilder.errors import UsageError

# `table` (aligned text, also `plain`) for people; json, markdown and csv for tools and docs.
PROFILE_FORMATS = ("table", "plain", "json", "markdown", "csv")


@dataclass
class ProfileOptions:
    batch_sizes: tuple[int, ...] = ()  # the first one's layers are timed; default: the spec's
    train: bool = False  # time each layer's backward pass too
    memory: int | None = None  # bytes: report the largest batch size that fits
    repeats: int = 10
    plot: Path | None = None  # throughput against batch size, a PNG


_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 1000**2,
    "mb": 1000**2,
    "g": 1000**3,
    "gb": 1000**3,
    "t": 1000**4,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?(?:e\d+)?)\s*([a-zA-Z]*)\s*$")


def parse_size(text: str, option: str = "--memory") -> int:
    """Bytes from "8GiB", "512MiB", "16GB", "1e9" (GB = 10^9, GiB = 2^30)."""
    match = _SIZE.match(str(text))
    unit = match.group(2).lower() if match else ""
    if not match or unit not in _UNITS:
        raise UsageError(
            f"{option} {text!r} is not a size; give a number with a unit, e.g. 8GiB, 512MiB or 16GB"
        )
    size = int(float(match.group(1)) * _UNITS[unit])
    if size <= 0:
        raise UsageError(f"{option} {text!r}: the size must be positive, e.g. 8GiB")
    return size


def check_batch_sizes(sizes: tuple[int, ...]) -> None:
    for size in sizes:
        if size < 1:
            raise UsageError(f"--batch-size {size}: a batch holds at least one sample")
    if len(set(sizes)) != len(sizes):
        raise UsageError(f"--batch-size given twice with the same value ({', '.join(map(str, sizes))})")
