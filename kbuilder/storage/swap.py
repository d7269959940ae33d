"""Replacing a directory atomically: write a staging sibling, then swap it into place.

A new version of DIR is written into a staging sibling `DIR.tmp-<pid>-<hex>`, then swapped
with DIR in one step. The swap uses Linux's renameat2(RENAME_EXCHANGE) through ctypes: DIR
names the old version until the instant it names the new one, so no reader (and no crash)
ever sees DIR missing. A symlink DIR -> versioned sibling swapped with os.replace would
also be atomic, but it turns the user's directory into a link (tools that copy or archive
it then see a link); the exchange keeps DIR a plain directory. Where renameat2 is missing
(not Linux, old kernel, a filesystem without it) the fallback is the two-rename swap, whose
gap is a few microseconds and is repaired by putting the old one back on failure.

Staging names carry the writer's pid, so a later writer removes those left by a killed
process (pid gone) and never those of a writer still running. Deciding whether DIR may be
replaced at all is the caller's business (kbuilder.export.manifest for exports).
"""

from __future__ import annotations

import ctypes
import errno
import os
import pathlib
import re
import secrets
import shutil
from collections.abc import Callable

from kbuilder.storage.atomic import fsync_directory

_STALE = re.compile(r"\.(tmp|old)-(\d+)-[0-9a-f]{8}")
_RENAME_EXCHANGE = 2  # linux/fs.h
_AT_FDCWD = -100

Renameat2 = Callable[[int, bytes, int, bytes, int], int]


def make_staging_dir(target: pathlib.Path) -> pathlib.Path:
    """A new empty sibling `TARGET.tmp-<pid>-<hex>` to write the next version of `target` in."""
    while True:
        staging = target.with_name(f"{target.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
        try:
            # os.mkdir (unlike tempfile.mkdtemp's 0o700) honours the umask, so
            # the published directory gets ordinary permissions.
            staging.mkdir()
            return staging
        except FileExistsError:
            continue


def remove_stale_siblings(target: pathlib.Path) -> list[str]:
    """Deletes `DIR.tmp-*`/`DIR.old-*` left by writers whose process is gone; returns their
    names. A process killed between the fallback swap's two renames left DIR missing and
    the previous version in `DIR.old-*`: that one is put back as DIR, not deleted."""
    if not target.parent.is_dir():
        return []
    stale = []
    for sibling in target.parent.iterdir():
        match = (
            _STALE.fullmatch(sibling.name[len(target.name) :])
            if sibling.name.startswith(target.name)
            else None
        )
        if match and not _process_alive(int(match.group(2))) and not sibling.is_symlink():
            stale.append((match.group(1), sibling))
    backups = sorted((s for kind, s in stale if kind == "old"), key=lambda s: s.stat().st_mtime)
    if backups and not os.path.lexists(target):
        os.rename(backups[-1], target)  # the last published version comes back
        stale = [(kind, s) for kind, s in stale if s != backups[-1]]
    for _, sibling in stale:
        shutil.rmtree(sibling, ignore_errors=True)
    return sorted(s.name for _, s in stale)


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    except OverflowError:
        return False
    return True


def swap_into_place(staging: pathlib.Path, target: pathlib.Path) -> None:
    """Publishes `staging` as `target`; the previous `target` (if any) is deleted after."""
    if not os.path.lexists(target):
        os.rename(staging, target)
    elif _exchange(staging, target):
        shutil.rmtree(staging, ignore_errors=True)  # now holds the previous version
    else:
        backup = target.with_name(f"{target.name}.old-{os.getpid()}-{secrets.token_hex(4)}")
        os.rename(target, backup)
        try:
            os.rename(staging, target)
        except BaseException:
            os.rename(backup, target)  # put the previous version back
            raise
        shutil.rmtree(backup, ignore_errors=True)
    fsync_directory(target.parent)  # makes the renames durable


def _exchange(first: pathlib.Path, second: pathlib.Path) -> bool:
    """Atomically swaps two paths with renameat2(RENAME_EXCHANGE); False where unsupported."""
    renameat2 = _renameat2()
    if renameat2 is None:
        return False
    result = renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE)
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False  # kernel or filesystem without the exchange: use the fallback
    raise OSError(code, os.strerror(code), str(second))


def _renameat2() -> Renameat2 | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        function = libc.renameat2  # glibc >= 2.28
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    function.restype = ctypes.c_int
    result: Renameat2 = function
    return result
