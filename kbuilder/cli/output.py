"""One output object for human and JSON output, and one table of error types."""

from __future__ import annotations

import functools
import json
import sys
import traceback
from dataclasses import dataclass
from typing import Any

import typer

from kbuilder.errors import (
    EXIT_RUNTIME,
    BuildError,
    CheckFailed,
    DataError,
    InputError,
    Interrupted,
    KBuilderError,
    ModelTooLarge,
    RuntimeFailure,
    SpecError,
    UsageError,
    debugging,
)

# What to tell the user after each kind of error (the message itself says what is wrong).
ERROR_HINTS: dict[type, str] = {
    BuildError: "the spec is valid but its shapes do not fit; `kbuilder build` prints the table up to the failing layer",
    SpecError: "see `kbuilder schema` for every field, and docs/spec-language.md for examples of each construct",
    CheckFailed: "the model differs from `expect`; fix the spec, or the figures if the model is right",
    DataError: "see the `train.data` section of docs/training.md",
    InputError: "kbuilder predict reads PNG, JPEG and BMP images, folders of them and .npy/.npz arrays "
    "(docs/commands.md, `kbuilder predict`)",
    UsageError: "see `kbuilder --help`",
    RuntimeFailure: "rerun with --debug (or KBUILDER_DEBUG=1) for the traceback",
    ModelTooLarge: "make the layer smaller (fewer units or filters, pool before flattening), or raise --max-params "
    "(KBUILDER_MAX_PARAMS) if the machine has the memory",
}


def debug_enabled() -> bool:
    return debugging()


def _hint(exc: BaseException) -> str:
    for cls in type(exc).__mro__:
        if cls in ERROR_HINTS:
            return ERROR_HINTS[cls]
    return ""


def error_summary(exc: BaseException) -> tuple[int, str, list[str], str]:
    """(exit code, title, problem lines, hint) of any error."""
    if isinstance(exc, KBuilderError):
        return exc.exit_code, exc.title, exc.details(), _hint(exc)
    return (
        EXIT_RUNTIME,
        f"internal error ({type(exc).__name__})",
        [str(exc) or type(exc).__name__],
        _hint(exc),
    )


def error_payload(exc: BaseException) -> dict[str, Any]:
    """The JSON object of an error (also one entry of a multi-spec result)."""
    code, title, lines, hint = error_summary(exc)
    return {"ok": False, "exit_code": code, "error": title, "problems": lines, "hint": hint}


def warning_lines(warnings) -> list[str]:
    """Located warnings (Problem objects or text) as `file:line:col: path: message` lines."""
    return [str(w) for w in warnings or ()]


@dataclass
class Output:
    """Writes results and errors either for people (stdout/stderr text) or as JSON."""

    json_mode: bool = False

    def result(self, data: dict[str, Any], text: str, warnings=()) -> None:
        """The command's result; warnings go to stderr (text) or under "warnings" (JSON)."""
        lines = warning_lines(warnings)
        if self.json_mode:
            sys.stdout.write(json.dumps({**data, "warnings": lines} if lines else data, indent=2) + "\n")
        else:
            self.warn(lines)
            sys.stdout.write(text)
        sys.stdout.flush()

    def warn(self, lines: list[str]) -> None:
        for line in lines:
            sys.stderr.write(f"kbuilder: warning: {line}\n")
        sys.stderr.flush()

    def error_document(self, exc: BaseException, payload: dict[str, Any]) -> None:
        """Write `payload` as the run's one JSON document (the traceback too in debug mode)."""
        if debug_enabled():
            traceback.print_exception(exc)
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
        sys.stdout.flush()

    def error(self, exc: BaseException, hint: str | None = None) -> int:
        """Report an error; returns the exit code. Tracebacks only in debug mode.
        `hint` replaces the error type's usual hint."""
        code, title, lines, usual = error_summary(exc)
        hint = usual if hint is None else hint
        if self.json_mode:
            self.error_document(exc, {**error_payload(exc), "hint": hint})
            return code
        if debug_enabled():
            traceback.print_exception(exc)
        if isinstance(exc, Interrupted):  # not a failure: one line, no hint about --debug
            sys.stderr.write(f"kbuilder: {exc}\n")
            sys.stderr.flush()
            return code
        sys.stderr.write(f"kbuilder: {title}:\n")
        for line in lines:
            sys.stderr.write(f"  {line}\n")
        if hint:
            sys.stderr.write(f"hint: {hint}\n")
        if not isinstance(exc, KBuilderError) and not debug_enabled():
            sys.stderr.write("(an unexpected error: rerun with --debug and report it)\n")
        sys.stderr.flush()
        return code


def reports_errors(command):
    """Wrap a command: any error becomes a message (text or JSON) and an exit code."""

    @functools.wraps(command)
    def run(*args, **kwargs):
        json_mode = kwargs.get("fmt") == "json" or bool(kwargs.get("json_out"))
        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except KeyboardInterrupt:  # Ctrl-C outside training, which says more itself
            raise typer.Exit(Output(json_mode).error(Interrupted())) from None
        except Exception as exc:  # noqa: BLE001  (every error is reported, none escapes as a traceback)
            raise typer.Exit(Output(json_mode).error(exc)) from None

    return run
