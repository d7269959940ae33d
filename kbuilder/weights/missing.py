"""A weights source that is not there yet: the located error that says how to make it.

A spec may name the run it fine-tunes from (`weights: {from: ../runs/lenet5_modern}`) before
that run exists: on a fresh checkout the bundled fine-tuning spec validates and its figures
check, and only what needs the weights (building, training, `check --keras`) stops, here, at
the spec's `weights.from` with the command that trains the run it names.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from kbuilder.errors import SpecError
from kbuilder.spec import LoadedSpec
from kbuilder.spec.diagnostics import located
from kbuilder.spec.weights import WeightsSpec
from kbuilder.zoo import find_bundled


def missing_source(loaded: LoadedSpec, options: WeightsSpec) -> SpecError | None:
    """The error for `options.from_` (already absolute where it was relative) naming nothing
    on disk, located at the spec's `weights.from` (or the --set/--weights that gave it); None
    when it exists (whether it can be read is kbuilder.weights.sources' to say)."""
    path = Path(options.from_)
    if path.exists():
        return None
    written = _written_from(loaded)
    shown = f"'{written}' (looked for {path})" if written and written != str(path) else f"'{path}'"
    return located(loaded.source, ("weights", "from"), f"no such run or weights file: {shown}; {_fix(path)}")


def spec_source_missing(loaded: LoadedSpec) -> SpecError | None:
    """`missing_source` for the spec's own `weights` section (None without one). Light: no
    Keras, so a run can be refused before its directory is made."""
    options = loaded.spec.weights
    if options is None:
        return None
    if loaded.path is not None:  # a spec revalidated from its data keeps `from` as written
        options = options.resolved(Path(loaded.path).parent)
    return missing_source(loaded, options)


def _written_from(loaded: LoadedSpec) -> str | None:
    section = loaded.data.get("weights") if isinstance(loaded.data, dict) else None
    value = section.get("from") if isinstance(section, dict) else None
    return value if isinstance(value, str) else None


def _fix(path: Path) -> str:
    """How to make the source: a run named after a bundled spec is trained from that spec."""
    out = shlex.quote(_relative(path))
    if path.suffix == "" and find_bundled(path.name) is not None:
        return (
            f"train that run first: `kbuilder train {path.name} --out {out}` "
            "(or give another source with --weights)"
        )
    if path.suffix == "":
        return (
            f"train that run first (`kbuilder train SPEC --out {out}`), or give another source with --weights"
        )
    return "give an existing run directory or weights file (a relative path starts at the spec's folder)"


def _relative(path: Path) -> str:
    """`path` from the working directory when it lies below it (what a user types), else as is."""
    try:
        return os.path.relpath(path) if path.is_relative_to(Path.cwd()) else str(path)
    except (OSError, ValueError):  # no working directory (deleted) or another drive
        return str(path)
