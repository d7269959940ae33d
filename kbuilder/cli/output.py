"""One output object for human and JSON output, and one table of error types."""

from __future__ import annotations

import functools
import json
import os
import sys
import traceback
from dataclasses import dataclass
from typing import Any

from kbuilder.errors import (
    EXIT_RUNTIME, BuildError, CheckFailed, DataError, KBuilderError, ModelTooLarge, RuntimeFailure, SpecError,
    UsageError,
)

# What to tell the user after each kind of error (the message itself says what is wrong).
ERROR_HINTS: dict[type, str] = {
    BuildError: "the spec is valid but its shapes do not fit; the table of `kbuilder build` shows every layer's output",
    SpecError: "see `kbuilder schema` for every field, and README.md for examples of each construct",
    CheckFailed: "the model differs from `expect`; fix the spec, or the figures if the model is right",
    DataError: "see the `train.data` section of README.md",
    UsageError: "see `kbuilder --help`",
    RuntimeFailure: "rerun with --debug (or KBUILDER_DEBUG=1) for the traceback",
    ModelTooLarge: "make the layer smaller (fewer units or filters, pool before flattening), or raise --max-params "
                   "(KBUILDER_MAX_PARAMS) if the machine has the memory",
}


def debug_enabled() -> bool:
    return os.environ.get("KBUILDER_DEBUG", "").lower() not in ("", "0", "false", "no")


def _hint(exc: BaseException) -> str:
    for cls in type(exc).__mro__:
        if cls in ERROR_HINTS:
            return ERROR_HINTS[cls]
    return ""


@dataclass
class Output:
    """Writes results and errors either for people (stdout/stderr text) or as JSON."""

    json_mode: bool = False

    def result(self, data: dict[str, Any], text: str) -> None:
        sys.stdout.write(json.dumps(data, indent=2) + "\n" if self.json_mode else text)
        sys.stdout.flush()

    def error(self, exc: BaseException) -> int:
        """Report an error; returns the exit code. Tracebacks only in debug mode."""
        if isinstance(exc, KBuilderError):
            code, title, lines = exc.exit_code, exc.title, exc.details()
        else:
            code, title = EXIT_RUNTIME, f"internal error ({type(exc).__name__})"
            lines = [str(exc) or type(exc).__name__]
        if debug_enabled():
            traceback.print_exception(exc)
        hint = _hint(exc)
        if self.json_mode:
            payload = {"ok": False, "exit_code": code, "error": title, "problems": lines, "hint": hint}
            sys.stdout.write(json.dumps(payload, indent=2) + "\n")
        else:
            sys.stderr.write(f"kbuilder: {title}:\n")
            for line in lines:
                sys.stderr.write(f"  {line}\n")
            if hint:
                sys.stderr.write(f"hint: {hint}\n")
            if not isinstance(exc, KBuilderError) and not debug_enabled():
                sys.stderr.write("(an unexpected error: rerun with --debug and report it)\n")
        return code


def reports_errors(command):
    """Wrap a command: any error becomes a message (text or JSON) and an exit code."""
    import typer

    @functools.wraps(command)
    def run(*args, **kwargs):
        json_mode = kwargs.get("fmt") == "json" or bool(kwargs.get("json_out"))
        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except Exception as exc:  # noqa: BLE001  (every error is reported, none escapes as a traceback)
            raise typer.Exit(Output(json_mode).error(exc)) from None

    return run
