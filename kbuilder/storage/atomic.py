"""Atomic file writes: a temporary file beside the target, fsync, rename.

Every file kbuilder writes for a user goes through here: run directories, study reports,
diagrams and figures.

A reader (or a rerun after a SIGKILL) sees either the previous file or the new one, never
half of one: os.replace is atomic on POSIX, and fsync before it makes sure the new bytes
are on disk before the name points at them (after a power cut as well as a kill).
A failed write (a full disk, a quota) removes its temporary file, leaves the previous
file in place, and becomes a RuntimeFailure that says so.

A temporary file is private (mkstemp makes it 0600) and so is the file it becomes, unless the
caller gives a `mode`: a diagram or a study report is for everyone who may read its folder.
"""

from __future__ import annotations

import errno
import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kbuilder.errors import RuntimeFailure

TEMP_PREFIX = ".tmp-"


class WriteFailed(RuntimeFailure):
    """A file could not be written; the previous version of it is intact."""

    title = "cannot write a file"


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
    then = (
        "; free some space, then run the same command again (a training run resumes where it stopped)"
        if full
        else ""
    )
    return WriteFailed(f"could not write {target}: {reason}; {kept} (nothing half-written was left){then}")


def readable_mode() -> int:
    """The mode a plain `open()` would give a new file under the current umask (0o666 & ~umask)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def write_with(
    target: Path, writer: Callable[[str], None], *, suffix: str = "", mode: int | None = None
) -> None:
    """Call `writer(temporary_path)` then rename the result onto `target`.

    `suffix` keeps the extension a writer insists on (Keras saves only to `*.keras`);
    `mode` (e.g. readable_mode()) replaces the temporary file's private 0600.
    """
    target = Path(target)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f"{TEMP_PREFIX}{target.name}.", suffix=suffix)
    os.close(fd)
    try:
        writer(tmp)
        if mode is not None:
            os.chmod(tmp, mode)
        _fsync_file(tmp)
        os.replace(tmp, target)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise _problem(target, exc) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_directory(target.parent)


def write_bytes(target: Path, data: bytes, *, mode: int | None = None) -> None:
    def writer(tmp: str) -> None:
        with open(tmp, "wb") as handle:
            handle.write(data)

    write_with(target, writer, mode=mode)


def write_text(target: Path, text: str, *, mode: int | None = None) -> None:
    write_bytes(target, text.encode("utf-8"), mode=mode)


def write_json(target: Path, data: Any, *, mode: int | None = None) -> None:
    """Indented JSON, NaN and infinities written as null (see `finite`)."""
    write_text(target, json.dumps(finite(data), indent=2, sort_keys=False) + "\n", mode=mode)


def finite(value: Any) -> Any:
    """JSON has no NaN/inf: they become null (a diverged loss is still reported, as null)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def save_figure(target: Path, figure: Any, *, mode: int | None = None, **savefig: Any) -> None:
    """A matplotlib figure saved with `figure.savefig(**savefig)` in the target's format."""
    target = Path(target)
    write_with(target, lambda tmp: figure.savefig(tmp, **savefig), suffix=target.suffix, mode=mode)


def remove_stale_temporaries(directory: Path) -> None:
    """Temporary files a killed process left behind (never a user's file: only our prefix)."""
    for entry in Path(directory).glob(f"{TEMP_PREFIX}*"):
        if entry.is_file() and not entry.is_symlink():
            entry.unlink(missing_ok=True)
