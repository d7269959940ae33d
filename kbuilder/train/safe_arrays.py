"""Reading `.npy` and `.npz` files that may be hostile, before a byte of array data is read.

A data file is untrusted input. Before numpy reads an array, its header is checked against
the file: only numeric dtypes (never object arrays, whose bytes are pickles), a declared
size that the file (or the zip member) really holds, and a size under a memory bound. A
header declaring 10^12 elements, a truncated archive, a deflate bomb (a tiny member that
declares gigabytes) or a device/FIFO passed as a file all become a DataError (exit 2),
never an allocation, a hang or an "internal error".
"""

from __future__ import annotations

import math
import os
import resource
import stat
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Self

import numpy as np

from kbuilder.errors import DataError

NUMERIC_KINDS = "biuf"  # bool, signed, unsigned, float
_GIB = 1 << 30


MEMORY_ENV = "KBUILDER_MEMORY_LIMIT"  # bytes, or with a unit: 2G, 512M


def memory_bound() -> int:
    """The most bytes the data of a run may take: the least of half the machine's memory, the
    memory available now, this process's address-space limit, its cgroup's limit and
    $KBUILDER_MEMORY_LIMIT (at least 64 MiB)."""
    limits = [_physical() // 2, available_memory()]
    limits += [value for value in (_env_limit(),) if value]
    return max(64 << 20, min(limits))


def available_memory() -> int:
    """What this process can still have: free memory now, its address-space and cgroup limits."""
    found = [value for value in (_meminfo_available(), _rlimit(), _cgroup_left()) if value]
    return min(found) if found else _physical()


def _physical() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 16 * _GIB


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _rlimit() -> int | None:
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    return soft if soft != resource.RLIM_INFINITY else None


def _cgroup_left() -> int | None:
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text().strip())
    except (OSError, ValueError):
        return None
    return int(limit) - used if limit.isdigit() else None


def _env_limit() -> int | None:
    text = os.environ.get(MEMORY_ENV, "").strip().upper().removesuffix("B")
    if not text:
        return None
    scale = {"K": 1 << 10, "M": 1 << 20, "G": _GIB, "T": 1 << 40}.get(text[-1:], 1)
    try:
        return int(float(text.rstrip("KMGT")) * scale)
    except ValueError:
        raise DataError(
            f"${MEMORY_ENV} is {os.environ[MEMORY_ENV]!r}; expected bytes, or a size such as 2G or 512M"
        ) from None


@dataclass(frozen=True)
class ArrayHeader:
    """What an .npy header declares: enough to price an array before reading it."""

    where: str
    shape: tuple[int, ...]
    dtype: np.dtype

    @property
    def rows(self) -> int:
        return self.shape[0] if self.shape else 1

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize


def describe_size(nbytes: int) -> str:
    for unit, scale in (("TB", 1 << 40), ("GB", _GIB), ("MB", 1 << 20), ("kB", 1 << 10)):
        if nbytes >= scale:
            return f"{nbytes / scale:.1f} {unit}"
    return f"{nbytes} bytes"


def regular_file(path: Path) -> None:
    """Links to regular files are fine; a link to /dev/zero, a FIFO or a folder is not."""
    try:
        info = os.stat(path)
    except OSError:
        raise DataError(f"no such data file: {path}") from None
    if not stat.S_ISREG(info.st_mode):
        raise DataError(
            f"{path} is not a regular file (a device, a FIFO or a folder); give the path of a .npy/.npz file"
        )


def _check_header(where: str, stream: IO[bytes], available: int) -> ArrayHeader:
    """Reads the .npy header at the stream's position; refuses what numpy should not read."""
    try:
        version = np.lib.format.read_magic(stream)
        start_header = stream.tell()
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(stream)
        else:
            shape, _, dtype = np.lib.format.read_array_header_2_0(stream)
    except (ValueError, EOFError, OSError, SyntaxError) as exc:
        raise DataError(f"{where} is not a valid .npy array ({exc})") from None
    if dtype.hasobject:
        raise DataError(
            f"{where} holds an object array (pickled Python objects); kbuilder reads only numeric "
            "arrays and never unpickles data: save it with a numeric dtype"
        )
    if dtype.kind not in NUMERIC_KINDS or dtype.fields is not None:
        raise DataError(
            f"{where} holds {dtype} values; kbuilder reads only numeric arrays (bool, int, uint, float)"
        )
    declared = math.prod(int(d) for d in shape) * dtype.itemsize
    held = available - (stream.tell() - start_header) - 8  # the magic string and version are 8 bytes
    if declared > memory_bound():
        raise DataError(
            f"{where} declares shape {tuple(shape)} {dtype} = {describe_size(declared)}, more than the "
            f"{describe_size(memory_bound())} kbuilder allows one data file on this machine"
        )
    if declared > held:
        raise DataError(
            f"{where} declares shape {tuple(shape)} {dtype} = {describe_size(declared)} but holds only "
            f"{describe_size(max(held, 0))}: the file is truncated or its header is wrong"
        )
    return ArrayHeader(where, tuple(int(d) for d in shape), dtype)


def npy_header(path: Path) -> ArrayHeader:
    """The checked header of an .npy file; no array data is read."""
    regular_file(path)
    try:
        with open(path, "rb") as handle:
            return _check_header(str(path), handle, os.fstat(handle.fileno()).st_size)
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc}") from None


def read_npy(path: Path) -> np.ndarray:
    regular_file(path)
    try:
        with open(path, "rb") as handle:
            _check_header(str(path), handle, os.fstat(handle.fileno()).st_size)
            handle.seek(0)
            return np.load(handle, allow_pickle=False)
    except DataError:
        raise
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from None


class NpzArchive:
    """An .npz opened for checked reads of single arrays (`with NpzArchive(path) as npz:`)."""

    def __init__(self, path: Path):
        regular_file(path)
        self.path = path
        try:
            self._zip = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
            raise DataError(f"{path} is not a valid .npz archive ({exc}): is it truncated?") from None
        self.members = {
            info.filename[:-4]: info for info in self._zip.infolist() if info.filename.endswith(".npy")
        }

    @property
    def files(self) -> list[str]:
        return list(self.members)

    def __contains__(self, key: str) -> bool:
        return key in self.members

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self._zip.close()

    def header(self, key: str) -> ArrayHeader:
        """The checked header of one member, from its first bytes (nothing else is unpacked)."""
        info = self._checked_info(key)
        try:
            with self._zip.open(info) as member:
                return _check_header(f"{self.path}[{key!r}]", member, info.file_size)
        except (zipfile.BadZipFile, zlib.error, OSError, ValueError, EOFError, NotImplementedError) as exc:
            raise DataError(
                f"cannot read {self.path}[{key!r}]: {exc} (a truncated or damaged archive)"
            ) from None

    def _checked_info(self, key: str) -> zipfile.ZipInfo:
        info = self.members[key]
        where = f"{self.path}[{key!r}]"
        if info.file_size > memory_bound():
            raise DataError(
                f"{where} declares {describe_size(info.file_size)} unpacked ({describe_size(info.compress_size)} packed), "
                f"more than the {describe_size(memory_bound())} kbuilder allows one data file on this machine"
            )
        return info

    def read(self, key: str) -> np.ndarray:
        info = self._checked_info(key)
        where = f"{self.path}[{key!r}]"
        try:
            with self._zip.open(info) as member:
                _check_header(where, member, info.file_size)
            with self._zip.open(info) as member:
                # zipfile never unpacks more than the member's declared size, checked above.
                return np.lib.format.read_array(member, allow_pickle=False)
        except DataError:
            raise
        except (zipfile.BadZipFile, zlib.error, OSError, ValueError, EOFError, NotImplementedError) as exc:
            raise DataError(f"cannot read {where}: {exc} (a truncated or damaged archive)") from None
