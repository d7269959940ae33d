"""The runs and specs an experiment is given on the command line (no Keras: checked before it loads)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from kbuilder.errors import UsageError
from kbuilder.storage.run_reader import is_run_dir
from kbuilder.zoo import spec_path


def refuse_repeated(sources: Sequence[str]) -> None:
    """The same run (or spec) twice would be one model counted twice in the average."""
    seen: dict[Path, str] = {}
    for source in sources:
        path = Path(source)
        if path.is_dir() and not is_run_dir(path):
            continue  # not a run at all: the members' plan says so
        key = path.resolve() if path.exists() else Path(spec_path(source)).resolve()
        if key in seen:
            what = "run" if is_run_dir(path) else "spec"
            raise UsageError(
                f"{source} is given twice (as {seen[key]!r} before): the same {what} twice would count one "
                "model twice in the average; give each once (for more members of one spec, use --members N)"
            )
        seen[key] = source


__all__ = ["refuse_repeated"]
