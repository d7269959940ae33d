"""`kbuilder report`: (re)write report.html of a run, an ensemble or a tune study.

kbuilder report runs/lenet5
"""

from __future__ import annotations

from pathlib import Path

import typer

import kbuilder.api as kb
from kbuilder.cli.common import TEXT_FORMATS, BackendOpt, JsonOpt, checked_backend, format_option, pick_format
from kbuilder.cli.output import Output


def register(app: typer.Typer) -> None:
    @app.command()
    def report(
        directory: Path = typer.Argument(..., help="A run directory, an ensemble directory or a tune study."),
        backend: str | None = BackendOpt,
        fmt: str | None = format_option(TEXT_FORMATS),
        json_out: bool = JsonOpt,
    ) -> None:
        """One self-contained HTML page: spec, layers, diagram, curves, metrics, evaluation (or trials, members)."""
        fmt = pick_format(fmt, json_out, TEXT_FORMATS)
        path = kb.run_report(directory, backend=checked_backend(backend))
        Output(fmt == "json").result({"report": str(path)}, f"{path}\n")
