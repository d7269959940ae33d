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
import stat
import zipfile
import zlib
from pathlib import Path
from typing import IO, Self

import numpy as np

from kbuilder.errors import DataError

NUMERIC_KINDS = "biuf"  # bool, signed, unsigned, float
_GIB = 1 << 30


def memory_bound() -> int:
    """The most bytes one data file may declare: half the machine's memory (at least 1 GiB)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = 16 * _GIB
    return max(_GIB, total // 2)


def _size(nbytes: int) -> str:
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


def _check_header(where: str, stream: IO[bytes], available: int) -> None:
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
            f"{where} declares shape {tuple(shape)} {dtype} = {_size(declared)}, more than the "
            f"{_size(memory_bound())} kbuilder allows one data file on this machine"
        )
    if declared > held:
        raise DataError(
            f"{where} declares shape {tuple(shape)} {dtype} = {_size(declared)} but holds only "
            f"{_size(max(held, 0))}: the file is truncated or its header is wrong"
        )


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

    def read(self, key: str) -> np.ndarray:
        info = self.members[key]
        where = f"{self.path}[{key!r}]"
        if info.file_size > memory_bound():
            raise DataError(
                f"{where} declares {_size(info.file_size)} unpacked ({_size(info.compress_size)} packed), "
                f"more than the {_size(memory_bound())} kbuilder allows one data file on this machine"
            )
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
