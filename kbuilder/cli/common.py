"""Options and helpers shared by the command modules."""

from __future__ import annotations

import os
import sys
from pathlib import Path

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


def spec_path(spec: str) -> Path:
    """A spec file path, or the name of a bundled spec like `lenet5`.

    Only a bare name (letters, digits, '_' and '-': no '/', no '.yaml') means a bundled
    spec, so a mistyped path such as `/no/such/dir/resnet50.yaml` is an error rather
    than silently the bundled ResNet-50. An existing path always wins."""
    path = Path(spec)
    if os.path.lexists(spec):
        return path
    from kbuilder.zoo import find_bundled, is_bundled_name

    bundled = find_bundled(spec) if is_bundled_name(spec) else None
    if bundled is not None:
        return bundled
    hint = ""
    if find_bundled(path.stem) is not None:
        hint = f"; to use the bundled spec, give its bare name: {path.stem}"
    raise UsageError(
        f"no such spec file: {spec}{hint or ' (nor a bundled spec of that name; see `kbuilder zoo`)'}"
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
