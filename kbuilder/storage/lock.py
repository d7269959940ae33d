"""One writer per run directory: an exclusive flock on `<run>/.kbuilder-lock`.

flock belongs to the open file, so the kernel releases it when the process ends in any
way, SIGKILL included: a killed run never leaves a lock that blocks the rerun. The file
holds the owner's pid, only to name it in the message. The owner removes the file when it
lets go (a finished run keeps no lock file); a process that opened it just before then
holds a lock on a removed file, so `acquire` checks, once it has the lock, that the file it
locked is still the one at the path, and tries again if not.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from kbuilder.errors import UsageError

LOCK_FILE = ".kbuilder-lock"
# Retries when the lock file is removed between open and flock (its owner finishing).
ACQUIRE_TRIES = 5


class RunLock:
    """Held from the moment a run directory is chosen until the run ends."""

    def __init__(self, directory: Path):
        self.path = Path(directory) / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        for _ in range(ACQUIRE_TRIES):
            fd = self._open_and_lock()
            if _still_at(fd, self.path):
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
                self._fd = fd
                return self
            os.close(fd)  # its owner removed it between our open and our lock: the lock is void
        raise UsageError(
            f"cannot lock the run directory {self.path.parent}: {self.path} keeps being replaced; "
            "is another program removing it?"
        )

    def _open_and_lock(self) -> int:
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
        return fd

    def release(self) -> None:
        """Remove the lock file, then drop the lock (removed first, so nobody can lock the
        file at the path between the two and find it gone afterwards)."""
        if self._fd is not None:
            with contextlib.suppress(FileNotFoundError):
                if _still_at(self._fd, self.path):
                    self.path.unlink()
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None


def _still_at(fd: int, path: Path) -> bool:
    """Whether the open file `fd` is the file now at `path`."""
    try:
        at_path = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (at_path.st_dev, at_path.st_ino) == (mine.st_dev, mine.st_ino)


def _read_owner(fd: int) -> str:
    try:
        return os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return ""
