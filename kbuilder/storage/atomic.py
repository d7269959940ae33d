"""Atomic file writes for the run directory: a temporary file beside the target, fsync, rename.

A reader (or a rerun after a SIGKILL) sees either the previous file or the new one, never
half of one: os.replace is atomic on POSIX, and fsync before it makes sure the new bytes
are on disk before the name points at them (after a power cut as well as a kill).
A failed write (a full disk, a quota) removes its temporary file, leaves the previous
file in place, and becomes a RuntimeFailure that says so.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from kbuilder.errors import RuntimeFailure

TEMP_PREFIX = ".tmp-"


class WriteFailed(RuntimeFailure):
    """A run file could not be written; the previous version of it is intact."""

    title = "cannot write a run file"


def fsync_directory(directory: Path) -> None:
    """Make a rename in `directory` durable (best effort: some file systems refuse)."""
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_file(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _problem(target: Path, exc: BaseException) -> WriteFailed:
    full = getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT)
    reason = "the disk is full" if full else f"{type(exc).__name__}: {exc}"
    kept = f"the previous {target.name} is kept" if target.exists() else f"no {target.name} was written"
    then = "; free some space, then run the same command again to resume the run" if full else ""
    return WriteFailed(f"could not write {target}: {reason}; {kept} (nothing half-written was left){then}")


def write_with(target: Path, writer: Callable[[str], None], *, suffix: str = "") -> None:
    """Call `writer(temporary_path)` then rename the result onto `target`.

    `suffix` keeps the extension a writer insists on (Keras saves only to `*.keras`).
    """
    target = Path(target)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f"{TEMP_PREFIX}{target.name}.", suffix=suffix)
    os.close(fd)
    try:
        writer(tmp)
        _fsync_file(tmp)
        os.replace(tmp, target)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise _problem(target, exc) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_directory(target.parent)


def write_bytes(target: Path, data: bytes) -> None:
    def writer(tmp: str) -> None:
        with open(tmp, "wb") as handle:
            handle.write(data)

    write_with(target, writer)


def write_text(target: Path, text: str) -> None:
    write_bytes(target, text.encode("utf-8"))


def remove_stale_temporaries(directory: Path) -> None:
    """Temporary files a killed process left behind (never a user's file: only our prefix)."""
    for entry in Path(directory).glob(f"{TEMP_PREFIX}*"):
        if entry.is_file() and not entry.is_symlink():
            entry.unlink(missing_ok=True)
