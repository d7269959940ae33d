"""The `kbuilder` command: a thin layer of small command modules over kbuilder.api.

Exit codes: 0 ok; 1 a check failed (model differs from `expect`); 2 invalid spec, data
or usage; 3 runtime failure (training, export, I/O); 130 interrupted (Ctrl-C). Tracebacks
only with --debug or KBUILDER_DEBUG=1.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
import threading

import typer

import kbuilder
from kbuilder.backend import keep_startup_quiet
from kbuilder.cli.common import DebugOpt, with_debug_option
from kbuilder.cli.output import Output, reports_errors
from kbuilder.errors import Interrupted, Location, SpecError, ctrl_c_pressed, note_ctrl_c
from kbuilder.spec.overrides import MAX_OVERRIDES

COMMAND_MODULES = (
    "validate",
    "build",
    "check",
    "diagram",
    "export",
    "train",
    "tune",
    "ensemble",
    "compare",
    "schema",
    "zoo",
    "evaluate",
    "inspect",
    "report",
    "predict",
    "profile",
    "import_model",
)

app = typer.Typer(
    name="kbuilder",
    help="Declarative YAML model builder for Keras 3: validate, build, check, train and export.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def show_version(value: bool) -> None:
    if value:
        typer.echo(f"kbuilder {kbuilder.__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    debug: bool = DebugOpt,
    version: bool = typer.Option(
        False, "--version", callback=show_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    # TensorFlow's start-up log lines are noise in a command's output (kept with --debug).
    keep_startup_quiet()


for _module in COMMAND_MODULES:
    importlib.import_module(f"kbuilder.cli.{_module}").register(app)
for _command in app.registered_commands:
    if _command.callback is not None:
        _command.callback = reports_errors(with_debug_option(_command.callback))


STARTUP_INTERRUPTED = (
    "interrupted while the command started, before it changed anything: run the same command to resume"
)


def main(argv: list[str] | None = None) -> int:
    """Console entry point; returns the exit code (typer reports its own usage errors, code 2).

    `--debug` acts through KBUILDER_DEBUG (so processes a command starts see it too); the
    variable is put back afterwards, so one in-process call never turns on the next one's."""
    args = list(sys.argv[1:] if argv is None else argv)
    too_many = _too_many_overrides(args)
    if too_many is not None:
        return Output("--json" in args).error(too_many)
    debug_before = os.environ.get("KBUILDER_DEBUG")
    previous_ctrl_c = signal.getsignal(signal.SIGINT)
    note_ctrl_c()
    if ctrl_c_pressed():  # while this process started
        return Output("--json" in args).error(Interrupted(STARTUP_INTERRUPTED))
    try:
        app(args=args, prog_name="kbuilder")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    finally:
        if previous_ctrl_c is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, previous_ctrl_c)
        if debug_before is None:
            os.environ.pop("KBUILDER_DEBUG", None)
        else:
            os.environ["KBUILDER_DEBUG"] = debug_before
    return 0


def _too_many_overrides(args: list[str]) -> SpecError | None:
    """Click gathers a repeated option in time quadratic in its count (250,000 `--set` took
    minutes), so the bound on overrides is checked on the raw arguments first."""
    count = sum(arg == "--set" or arg.startswith("--set=") for arg in args)
    if count <= MAX_OVERRIDES:
        return None
    return SpecError.at(Location("--set"), f"{count} overrides; the limit is {MAX_OVERRIDES}")


if __name__ == "__main__":
    sys.exit(main())
