"""Publishing an export directory atomically, and never over someone else's files.

An export is written into a staging sibling `DIR.tmp-<pid>-<hex>`, verified, then swapped
with DIR in one step. The swap uses Linux's renameat2(RENAME_EXCHANGE) through ctypes: DIR
names the old export until the instant it names the new one, so no reader (and no crash)
ever sees DIR missing. A symlink DIR -> versioned sibling swapped with os.replace would
also be atomic, but it turns the user's directory into a link (tools that copy or archive
it then see a link); the exchange keeps DIR a plain directory. Where renameat2 is missing
(not Linux, old kernel, a filesystem without it) the fallback is the two-rename swap, whose
gap is a few microseconds and is repaired by putting the old one back on failure.

Staging names carry the writer's pid, so a later export removes those left by a killed
process (pid gone) and never those of an export still running.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import os
import pathlib
import re
import secrets
import shutil
from typing import Any

from kbuilder.errors import UsageError

MANIFEST_FILE = "manifest.json"
_STALE = re.compile(r"\.(tmp|old)-(\d+)-[0-9a-f]{8}")
_RENAME_EXCHANGE = 2  # linux/fs.h
_AT_FDCWD = -100


def check_replaceable(target: pathlib.Path) -> None:
    """Refuses (UsageError) a target that is a file, or a non-empty directory that is not
    an intact kbuilder export: its manifest must be ours and list exactly its files, with
    matching hashes. Replacing deletes the directory, so anything else is the user's."""
    if not os.path.lexists(target):
        return
    if target.is_symlink() or not target.is_dir():
        kind = "a symbolic link" if target.is_symlink() else "not a directory"
        raise UsageError(f"cannot export to {target}: it exists and is {kind}")
    if not any(target.iterdir()):
        return
    problem = _not_an_export(target)
    if problem:
        raise UsageError(
            f"refusing to replace {target}: {problem}, so it is not a kbuilder "
            "export (replacing it would delete its files); choose another directory"
        )


def _not_an_export(target: pathlib.Path) -> str | None:
    manifest_path = target / MANIFEST_FILE
    if not manifest_path.is_file():
        return f"it is not empty and has no {MANIFEST_FILE}"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        return f"its {MANIFEST_FILE} is not readable JSON ({type(error).__name__})"
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not (
        isinstance(files, dict)
        and "kbuilder_version" in manifest
        and all(isinstance(v, str) for v in files.values())
    ):
        return f"its {MANIFEST_FILE} is not a kbuilder export manifest"
    present = {
        p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file() or p.is_symlink()
    } - {MANIFEST_FILE}
    extra = sorted(present - set(files))
    if extra:
        return f"it holds files its {MANIFEST_FILE} does not list ({', '.join(extra[:3])})"
    for name, digest in files.items():
        path = target / name
        if path.is_symlink() or not path.is_file() or file_sha256(path) != digest:
            return f"{name} is missing or differs from its hash in {MANIFEST_FILE}"
    return None


def file_sha256(path: pathlib.Path, *, sync: bool = False) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
        if sync:
            os.fsync(handle.fileno())  # on disk before the swap publishes it
    return digest.hexdigest()


def make_staging_dir(target: pathlib.Path) -> pathlib.Path:
    while True:
        staging = target.with_name(f"{target.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
        try:
            # os.mkdir (unlike tempfile.mkdtemp's 0o700) honours the umask, so
            # the final export gets ordinary permissions.
            staging.mkdir()
            return staging
        except FileExistsError:
            continue


def remove_stale_siblings(target: pathlib.Path) -> list[str]:
    """Deletes `DIR.tmp-*`/`DIR.old-*` left by exports whose process is gone; returns their
    names. A process killed between the fallback swap's two renames left DIR missing and
    the previous export in `DIR.old-*`: that one is put back as DIR, not deleted."""
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
        os.rename(backups[-1], target)  # the last published export comes back
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
        shutil.rmtree(staging, ignore_errors=True)  # now holds the previous export
    else:
        backup = target.with_name(f"{target.name}.old-{os.getpid()}-{secrets.token_hex(4)}")
        os.rename(target, backup)
        try:
            os.rename(staging, target)
        except BaseException:
            os.rename(backup, target)  # put the previous export back
            raise
        shutil.rmtree(backup, ignore_errors=True)
    sync_directory(target.parent)


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


def _renameat2() -> Any:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        function = libc.renameat2  # glibc >= 2.28
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


def sync_directory(path: pathlib.Path) -> None:
    # Makes the renames durable; not every platform can open/fsync a directory.
    try:
        descriptor = os.open(path, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
    except OSError:
        pass
