"""The `kbuilder` command: a thin layer of small command modules over kbuilder.api.

Exit codes: 0 ok; 1 a check failed (model differs from `expect`); 2 invalid spec, data
or usage; 3 runtime failure (training, export, I/O). Tracebacks only with --debug or
KBUILDER_DEBUG=1.
"""

from __future__ import annotations

import importlib
import os
import sys

import typer

from kbuilder.cli.output import Output

COMMAND_MODULES = ("validate", "build", "check", "export", "schema", "zoo")

app = typer.Typer(
    name="kbuilder",
    help="Declarative YAML model builder for Keras 3: validate, build, check, train and export.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def main_options(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks (also KBUILDER_DEBUG=1)."),
) -> None:
    if debug:
        os.environ["KBUILDER_DEBUG"] = "1"


for _module in COMMAND_MODULES:
    importlib.import_module(f"kbuilder.cli.{_module}").register(app)


def main(argv: list[str] | None = None) -> int:
    """Console entry point: run the app, map errors to messages and exit codes."""
    json_mode = any(a in ("--json", "--format=json") for a in (argv or sys.argv[1:])) or _format_json(argv or sys.argv[1:])
    try:
        app(args=argv, standalone_mode=False)
    except SystemExit as exc:  # typer's own exits (help, usage errors) keep their codes
        return int(exc.code or 0)
    except KeyboardInterrupt:
        sys.stderr.write("kbuilder: interrupted\n")
        return 130
    except BaseException as exc:  # noqa: BLE001  (every error becomes a message + exit code)
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            return 2
        if isinstance(exc, click.exceptions.Exit):
            return exc.exit_code
        if isinstance(exc, click.exceptions.Abort):
            return 130
        return Output(json_mode).error(exc)
    return 0


def _format_json(args: list[str]) -> bool:
    return any(a in ("-f", "--format") and i + 1 < len(args) and args[i + 1] == "json" for i, a in enumerate(args))


if __name__ == "__main__":
    sys.exit(main())
