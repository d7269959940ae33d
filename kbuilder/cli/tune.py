"""`kbuilder tune`: hyperparameter search over the spec's `search` section, on Optuna.

kbuilder tune specs/mnist_mlp.yaml --data-dir ../shared/datasets            # SQLite in runs/tune-mnist_mlp
kbuilder tune specs/mnist_mlp.yaml --workers 2 --set search.trials=8 --epochs 2
kbuilder tune SPEC --storage postgresql://user@db/optuna --study lr-width     # on each machine: joins
kbuilder tune --report runs/tune-mnist_mlp                                     # table, best.yaml, plots again
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

import kbuilder.api as kb
from kbuilder.cli.common import (
    TABLE_FORMATS,
    BackendOpt,
    DataDirOpt,
    JsonOpt,
    SetOpt,
    checked_backend,
    format_option,
    pick_format,
)
from kbuilder.cli.output import Output
from kbuilder.errors import Interrupted, UsageError
from kbuilder.zoo import spec_path


def _summary_text(summary: dict, search, fmt: str) -> str:
    from kbuilder.experiments.tune import render_table  # loaded with the study

    if fmt == "csv":
        return render_table(summary["trials"], search, "csv")
    text = render_table(summary["trials"], search, "markdown" if fmt == "markdown" else "plain")
    lines = [
        (
            f"study '{summary['study']}' in {summary['storage']}: {summary['counted']} of {summary['target']} trials "
            f"({summary['complete']} complete, {summary['pruned']} pruned, {summary['failed']} failed)"
        )
    ]
    best = summary.get("best")
    if best:
        values = ", ".join(f"{k}={best[k]}" for k in search.space)
        lines.append(f"best: trial {best['trial']} {search.metric}={best[search.metric]:.4f} ({values})")
        lines.append(
            f"best spec: {summary['best_spec']} (train it with `kbuilder train {summary['best_spec']}`)"
        )
    plots = [p for p in summary["plots"].values() if not p.startswith("skipped")]
    skipped = [f"{k} {p}" for k, p in summary["plots"].items() if p.startswith("skipped")]
    lines.append(f"plots: {', '.join(plots) or 'none'}" + (f" ({'; '.join(skipped)})" if skipped else ""))
    lines.append(
        f"trials table: {Path(summary['study_dir']) / 'trials.csv'}; summary: {Path(summary['study_dir']) / 'summary.json'}"
    )
    return text + "\n" + "\n".join(lines) + "\n"


def register(app: typer.Typer) -> None:
    @app.command()
    def tune(
        spec: str | None = typer.Argument(
            None, help="Spec file (YAML) with `train` and `search` sections, or a bundled spec name."
        ),
        overrides: list[str] | None = SetOpt,
        trials: int | None = typer.Option(
            None, "--trials", min=1, help="Trials to finish (default: search.trials)."
        ),
        workers: int = typer.Option(
            1, "--workers", "-w", min=1, max=256, help="Worker processes on this machine."
        ),
        storage: str | None = typer.Option(
            None,
            "--storage",
            help="Optuna RDB URL shared by workers on several machines "
            "(default: SQLite in the study folder).",
        ),
        study: str | None = typer.Option(
            None,
            "--study",
            help="Study name (default: the spec's name); the same name and storage join a running study.",
        ),
        out: Path | None = typer.Option(
            None,
            "--out",
            "-o",
            help="Study folder: trials' run directories and the report (default runs/tune-<study>).",
        ),
        report: Path | None = typer.Option(
            None, "--report", help="Only write and show the report of this study folder."
        ),
        data_dir: Path | None = DataDirOpt,
        backend: str | None = BackendOpt,
        epochs: int | None = typer.Option(
            None,
            "--epochs",
            help="Epochs each trial trains (a cheaper search); best.yaml keeps the recipe's "
            "(--set train.epochs=N changes the recipe).",
        ),
        export: bool = typer.Option(
            False,
            "--export",
            help="Export every trial's model (off: trials are compared, the best retrained).",
        ),
        heartbeat: int = typer.Option(
            10,
            "--heartbeat",
            min=1,
            max=3600,
            help="Seconds between a running trial's heartbeats; "
            "a trial silent for 3 beats is failed and retried.",
        ),
        fmt: str | None = format_option(TABLE_FORMATS),
        json_out: bool = JsonOpt,
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No line per finished trial."),
    ) -> None:
        """Search the spec's `search` space: every trial is a run directory in the study folder."""
        fmt = pick_format(fmt, json_out)
        if report is not None:
            if spec is not None:
                raise UsageError("--report reads a finished study; leave out SPEC")
            result = kb.tune_report(report, storage=storage, study=study, out=out)
        elif spec is None:
            raise UsageError("give a SPEC file with a search section (or --report STUDY_FOLDER)")
        else:
            try:
                result = kb.tune(
                    spec_path(spec),
                    list(overrides or ()),
                    epochs=epochs,
                    trials=trials,
                    workers=workers,
                    storage=storage,
                    study=study,
                    out=out,
                    data_dir=data_dir,
                    backend=checked_backend(backend),
                    export=export,
                    heartbeat=heartbeat,
                    progress=not quiet,
                )
            except Interrupted as exc:
                # Every worker has stopped and the storage holds the study: nothing is left to
                # write, and TensorFlow's teardown at exit takes seconds on a busy machine.
                code = Output(fmt == "json").error(exc)
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        from kbuilder.storage.atomic import finite  # JSON without NaN; loaded with the study

        data = finite(result.summary if report is not None else {"ok": True, **result.summary})
        Output(fmt == "json").result(data, _summary_text(result.summary, result.search, fmt))
