"""`kbuilder compare`: runs side by side, e.g. the notes' sigmoid-against-ReLU comparison.

kbuilder compare runs/relu runs/sigmoid -o relu_vs_sigmoid.png
kbuilder compare runs/study/trials/* --format markdown
kbuilder compare runs/mlp runs/lenet --all       # every differing layer setting, not a summary

The table fits the terminal (COLUMNS when set): too wide, it is transposed to one row per
setting, and its runs split into blocks when even that does not fit.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import typer

import kbuilder.api as kb
from kbuilder.cli.common import TABLE_FORMATS, JsonOpt, format_option, pick_format
from kbuilder.cli.output import Output


def register(app: typer.Typer) -> None:
    @app.command()
    def compare(
        runs: list[Path] = typer.Argument(
            ..., help="Run directories written by `kbuilder train` (or tune trials, ensemble members)."
        ),
        figure: Path | None = typer.Option(
            None, "--output", "-o", help="Write the overlaid learning curves to this PNG file."
        ),
        all_settings: bool = typer.Option(
            False, "--all", help="Every differing setting, where two architectures are otherwise summarized."
        ),
        fmt: str | None = format_option(TABLE_FORMATS),
        json_out: bool = JsonOpt,
    ) -> None:
        """One table of the settings that differ and the final figures; learning curves overlaid in one PNG."""
        fmt = pick_format(fmt, json_out)
        comparison = kb.compare(runs, figure, all_settings=all_settings)
        # Formatting helpers of the experiments package, loaded already by kb.compare.
        from kbuilder.experiments.compare import as_json, notes, table_rows
        from kbuilder.experiments.tables import render_table

        written = str(figure) if figure is not None else None
        headers, rows = table_rows(comparison, human=fmt != "csv")
        below = notes(comparison) + ([f"learning curves: {written}"] if written else [])
        text = render_table(
            f"{len(comparison.runs)} runs: differing settings and final figures",
            headers,
            rows,
            fmt,
            notes=below,
            width=shutil.get_terminal_size().columns,  # COLUMNS when set, else the terminal's (80 piped)
        )
        Output(fmt == "json").result(as_json(comparison, written), text)
