"""Options and helpers shared by the command modules."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from kbuilder.errors import UsageError

FORMATS = ("rich", "plain", "json", "markdown", "csv")

SpecArg = typer.Argument(..., help="Spec file (YAML), or the name of a bundled spec (see `kbuilder zoo`).")
SetOpt = typer.Option(None, "--set", help="Override a spec value: KEY=VALUE (repeatable), e.g. train.epochs=3.")
FormatOpt = typer.Option(None, "--format", "-f", help="rich (terminal), plain (default when piped), json, markdown or csv.")


def spec_path(spec: str) -> Path:
    """A file path, or a bundled spec name like `lenet5`."""
    path = Path(spec)
    if path.exists():
        return path
    from kbuilder.zoo import find_bundled

    bundled = find_bundled(spec)
    if bundled is not None:
        return bundled
    raise UsageError(f"no such spec file: {spec} (nor a bundled spec of that name; see `kbuilder zoo`)")


def pick_format(fmt: Optional[str]) -> str:
    if fmt is None:
        return "rich" if sys.stdout.isatty() else "plain"
    if fmt not in FORMATS:
        from kbuilder.errors import did_you_mean

        raise UsageError(f"unknown format '{fmt}'{did_you_mean(fmt, FORMATS)}; choose one of {', '.join(FORMATS)}")
    return fmt


def quiet_tensorflow(backend: str | None = None) -> None:
    """TensorFlow's C++ start-up chatter is noise in a CLI (kept with --debug); `backend` is the
    one the command will use when it is not KERAS_BACKEND's (TensorFlow is imported only for it)."""
    from kbuilder.backend import quiet_tensorflow_startup

    quiet_tensorflow_startup(backend)
