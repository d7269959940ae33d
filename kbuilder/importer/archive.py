"""config.json out of a `.keras` file, read as untrusted input.

A `.keras` file is a zip archive. Only the member `config.json` is read, into memory, with a
size limit checked before reading; nothing is extracted and nothing is deserialized (Keras's
loader would build the layers and, for a Lambda, run its code). An archive with members that
could escape a directory when extracted (`../x`, `/etc/x`) is refused as crafted.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

from kbuilder.errors import Location, Problem, SpecError

CONFIG_MEMBER = "config.json"
MAX_CONFIG_BYTES = 64 * 1024 * 1024
MAX_MEMBERS = 10_000


def _refuse(path: Path, message: str, fix: str = "") -> SpecError:
    text = f"{message}; {fix}" if fix else message
    return SpecError([Problem(Location(str(path)), text)])


def _unsafe_member(name: str) -> bool:
    parts = name.replace("\\", "/").split("/")
    return name.startswith(("/", "\\")) or ".." in parts or (len(name) > 1 and name[1] == ":")


def read_keras_archive(path: Path) -> Any:
    """The parsed config.json of a `.keras` file (plain JSON data, nothing built)."""
    if not path.is_file():
        raise _refuse(path, "no such file", "give a .keras file or a keras.applications model name")
    if not zipfile.is_zipfile(path):
        raise _refuse(path, "not a .keras file (a zip archive)", "save the model with model.save('x.keras')")
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            if len(members) > MAX_MEMBERS:
                raise _refuse(path, f"{len(members)} members in the archive (at most {MAX_MEMBERS})")
            unsafe = [m.filename for m in members if _unsafe_member(m.filename)]
            if unsafe:
                raise _refuse(path, f"crafted archive: member name {unsafe[0]!r} points outside the archive")
            info = next((m for m in members if m.filename == CONFIG_MEMBER), None)
            if info is None:
                raise _refuse(path, f"no {CONFIG_MEMBER} in the archive", "is it a Keras 3 .keras file?")
            if info.file_size > MAX_CONFIG_BYTES:
                raise _refuse(
                    path, f"{CONFIG_MEMBER} declares {info.file_size:,} bytes (at most {MAX_CONFIG_BYTES:,})"
                )
            with archive.open(info) as member:
                # The declared size can lie: read one byte past the limit to notice.
                data = member.read(MAX_CONFIG_BYTES + 1)
            if len(data) > MAX_CONFIG_BYTES:
                raise _refuse(path, f"{CONFIG_MEMBER} is larger than {MAX_CONFIG_BYTES:,} bytes")
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as exc:
        raise _refuse(path, f"cannot read the archive: {exc}") from None
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise _refuse(path, f"{CONFIG_MEMBER} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise _refuse(path, f"{CONFIG_MEMBER}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}") from None
    except RecursionError:
        raise _refuse(path, f"{CONFIG_MEMBER} is nested too deeply") from None
