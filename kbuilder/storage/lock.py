"""One writer per run directory: an exclusive flock on `<run>/.kbuilder-lock`.

flock belongs to the open file, so the kernel releases it when the process ends in any
way, SIGKILL included: a killed run never leaves a lock that blocks the rerun. The file
holds the owner's pid, only to name it in the message.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from kbuilder.errors import UsageError

LOCK_FILE = ".kbuilder-lock"


class RunLock:
    """Held from the moment a run directory is chosen until the run ends."""

    def __init__(self, directory: Path):
        self.path = Path(directory) / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(self.path, flags, 0o644)
        except OSError as exc:
            raise UsageError(
                f"cannot lock the run directory {self.path.parent}: {exc.strerror} ({self.path})"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = _read_owner(fd)
            os.close(fd)
            who = f"process {owner}" if owner else "another process"
            raise UsageError(
                f"another `kbuilder train` ({who}) is writing {self.path.parent}; "
                "wait for it to finish, or choose another --out"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None


def _read_owner(fd: int) -> str:
    try:
        return os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return ""
