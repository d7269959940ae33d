"""Options and helpers shared by the command modules."""

from __future__ import annotations

import os
import sys

import typer

from kbuilder.errors import UsageError

FORMATS = ("rich", "plain", "json", "markdown", "csv")

SpecArg = typer.Argument(..., help="Spec file (YAML), or the name of a bundled spec (see `kbuilder zoo`).")
SetOpt = typer.Option(
    None, "--set", help="Override a spec value: KEY=VALUE (repeatable), e.g. train.epochs=3."
)
MaxParamsOpt = typer.Option(
    None,
    "--max-params",
    help="Refuse a model with more parameters than this, before allocating any (default 2e9, or KBUILDER_MAX_PARAMS).",
)
FormatOpt = typer.Option(
    None, "--format", "-f", help="rich (terminal), plain (default when piped), json, markdown or csv."
)


def apply_max_params(raw: str | None) -> None:
    """Check `--max-params` and pass it on through the environment, which the builder
    reads, so that processes a command starts (distributed training) obey it too."""
    if raw is not None:
        from kbuilder.build.budget import MAX_PARAMS_ENV, parse_max_params

        os.environ[MAX_PARAMS_ENV] = str(parse_max_params(raw))


def pick_format(fmt: str | None) -> str:
    if fmt is None:
        return "rich" if sys.stdout.isatty() else "plain"
    if fmt not in FORMATS:
        from kbuilder.errors import did_you_mean

        raise UsageError(
            f"unknown format '{fmt}'{did_you_mean(fmt, FORMATS)}; choose one of {', '.join(FORMATS)}"
        )
    return fmt


def quiet_tensorflow(backend: str | None = None) -> None:
    """TensorFlow's C++ start-up chatter is noise in a CLI (kept with --debug); `backend` is the
    one the command will use when it is not KERAS_BACKEND's (TensorFlow is imported only for it)."""
    from kbuilder.backend import quiet_tensorflow_startup

    quiet_tensorflow_startup(backend)
