"""`kbuilder compare`: runs side by side, e.g. the notes' sigmoid-against-ReLU comparison.

kbuilder compare runs/relu runs/sigmoid -o relu_vs_sigmoid.png
kbuilder compare runs/study/trials/* --format markdown
"""

from __future__ import annotations

from pathlib import Path

import typer

from kbuilder.cli.common import FormatOpt, pick_format


def register(app: typer.Typer) -> None:
    @app.command()
    def compare(
        runs: list[Path] = typer.Argument(
            ..., help="Run directories written by `kbuilder train` (or tune trials, ensemble members)."
        ),
        figure: Path | None = typer.Option(
            None, "--output", "-o", help="Write the overlaid learning curves to this PNG file."
        ),
        fmt: str | None = FormatOpt,
    ) -> None:
        """One table of the settings that differ and the final figures; learning curves overlaid in one PNG."""
        fmt = pick_format(fmt)
        from kbuilder.experiments.compare import as_json, compare_runs, plot_curves, table_rows
        from kbuilder.experiments.tables import render_table

        comparison = compare_runs(runs)
        written = str(plot_curves(comparison, figure)) if figure is not None else None
        headers, rows = table_rows(comparison)
        notes = [] if comparison.settings else ["the runs' resolved specs are identical"]
        if written:
            notes.append(f"learning curves: {written}")
        text = render_table(
            f"{len(comparison.runs)} runs: differing settings and final figures",
            headers,
            rows,
            fmt,
            notes=notes,
        )
        from kbuilder.cli.output import Output

        Output(fmt == "json").result(as_json(comparison, written), text)
