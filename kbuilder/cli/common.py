"""Options shared by the command modules, each defined once here with its one check.

`--set`, `--format`/`--json`, `--backend`, `--data-dir`, `--epochs`, `--max-params` and
`--debug` (which app.py adds to every command with `with_debug_option`).
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import typer

from kbuilder.backend import BACKENDS, check_backend
from kbuilder.errors import UsageError, did_you_mean

# What a command can print: the layer-table commands also write markdown and CSV; the others
# print a few lines of text (plain and rich are the same there) or JSON.
TABLE_FORMATS = ("rich", "plain", "json", "markdown", "csv")
TEXT_FORMATS = ("text", "plain", "rich", "json")

SpecArg = typer.Argument(..., help="Spec file (YAML), or the name of a bundled spec (see `kbuilder zoo`).")
SpecsArg = typer.Argument(..., help="Spec files (YAML), or names of bundled specs (see `kbuilder zoo`).")
SetOpt = typer.Option(
    None, "--set", help="Override a spec value: KEY=VALUE (repeatable), e.g. train.epochs=3."
)
JsonOpt = typer.Option(False, "--json", help="Same as --format json.")
BackendOpt = typer.Option(
    None, "--backend", help=f"Keras backend: {', '.join(BACKENDS)} (default: KERAS_BACKEND, else tensorflow)."
)
ModelOpt = typer.Option(
    "best",
    "--model",
    help="best or last: which of a run's saved models (a run's, or a study's best trial's).",
)
DataDirOpt = typer.Option(
    None,
    "--data-dir",
    help="Folder searched first for the Keras data sets' <name>.npz (also KBUILDER_DATA_DIR).",
)
# Checked as the override it stands for, like the spec file's own value (located, JSON with --json).
EpochsOpt = typer.Option(None, "--epochs", help="Shorthand for --set train.epochs=N.")
WeightsOpt = typer.Option(
    None,
    "--weights",
    help="Start from these trained weights (a run or export directory, .keras, .weights.h5, legacy .h5): "
    "sets the spec's weights.from (docs/weights.md).",
)
MaxParamsOpt = typer.Option(
    None,
    "--max-params",
    help="Refuse a model with more parameters than this, before allocating any (default 2e9, or KBUILDER_MAX_PARAMS).",
)


def format_option(choices: Sequence[str]) -> Any:
    """`--format`/`-f`, listing what this command can print (checked by pick_format)."""
    default = "rich on a terminal, plain when piped" if "markdown" in choices else "text"
    return typer.Option(None, "--format", "-f", help=f"Output: {', '.join(choices)} (default: {default}).")


def pick_format(fmt: str | None, json_out: bool = False, choices: Sequence[str] = TABLE_FORMATS) -> str:
    """The output format from `--format` and its alias `--json` (refused when they disagree)."""
    if json_out:
        if fmt not in (None, "json"):
            raise UsageError(f"--json means --format json; give one of them, not --format {fmt} too")
        return "json"
    if fmt is None:
        return "rich" if sys.stdout.isatty() and "markdown" in choices else "plain"  # tables only
    if fmt not in choices:
        raise UsageError(
            f"unknown format '{fmt}'{did_you_mean(fmt, choices)}; choose one of {', '.join(choices)}"
        )
    return "plain" if fmt == "text" else fmt


def checked_backend(backend: str | None) -> str | None:
    """`--backend`, refused (with a suggestion) before any work when it is not one of BACKENDS."""
    return None if backend is None else check_backend(backend)


def apply_max_params(raw: str | None) -> None:
    """Check `--max-params` and pass it on through the environment, which the builder
    reads, so that processes a command starts (distributed training) obey it too."""
    if raw is not None:
        # The build package may import Keras: only when the option is given (validate first).
        from kbuilder.build.budget import MAX_PARAMS_ENV, parse_max_params

        os.environ[MAX_PARAMS_ENV] = str(parse_max_params(raw))


def epochs_override(epochs: int | None) -> list[str]:
    """`--epochs N` as the override it stands for (validated and recorded like the file)."""
    return [] if epochs is None else [f"train.epochs={epochs}"]


def weights_override(source: str | None) -> list[str]:
    """`--weights SOURCE` as the override it stands for, the path made absolute (a spec's own
    relative `from` starts at the spec's folder; a command-line path starts here)."""
    if source is None:
        return []
    return [f"weights.from={json.dumps(str(Path(source).expanduser().resolve()))}"]


def enable_debug(value: bool) -> None:
    """`--debug`: tracebacks, and TensorFlow's start-up lines (also KBUILDER_DEBUG=1)."""
    if value:
        os.environ["KBUILDER_DEBUG"] = "1"


DebugOpt = typer.Option(
    False,
    "--debug",
    callback=enable_debug,
    is_eager=True,
    help="Show tracebacks and TensorFlow's start-up lines (also KBUILDER_DEBUG=1).",
)


def with_debug_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """The command, taking `--debug` after its name too (`kbuilder build --debug x.yaml`)."""
    signature = inspect.signature(command, eval_str=True)
    debug = inspect.Parameter("debug", inspect.Parameter.KEYWORD_ONLY, default=DebugOpt, annotation=bool)

    @functools.wraps(command)
    def run(*args: Any, debug: bool = False, **kwargs: Any) -> Any:
        return command(*args, **kwargs)  # `debug` acted already, while the options were parsed

    run.__signature__ = signature.replace(parameters=[*signature.parameters.values(), debug])  # type: ignore[attr-defined]
    run.__annotations__ = {**command.__annotations__, "debug": bool}
    return run
