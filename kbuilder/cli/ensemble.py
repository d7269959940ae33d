"""`kbuilder ensemble`: several trained networks combined into one model.

kbuilder ensemble specs/mnist_mlp.yaml --members 5 --data-dir ../shared/datasets     # 5 seeds
kbuilder ensemble specs/mnist_mlp.yaml --members 5 --bagging                         # + bootstrap resamples
kbuilder ensemble runs/a runs/b runs/c --combine vote                                # finished runs
"""

from __future__ import annotations

from pathlib import Path

import typer

import kbuilder.api as kb
from kbuilder.cli.common import (
    TABLE_FORMATS,
    BackendOpt,
    DataDirOpt,
    EpochsOpt,
    JsonOpt,
    SetOpt,
    checked_backend,
    epochs_override,
    format_option,
    pick_format,
)
from kbuilder.cli.output import Output


def summary(metrics: dict, directory: Path, fmt: str) -> str:
    from kbuilder.experiments.tables import render_table  # loaded with the ensemble run

    chosen = metrics["combine"]
    rows = [
        [m["member"], m["seed"], m["bootstrap"], m["test_accuracy"], m["test_loss"]]
        for m in metrics["members"]
    ]
    for method, figures in metrics["combinations"].items():
        label = f"ensemble ({method})" + (" *" if method == chosen else "")
        rows.append([label, None, None, figures["test_accuracy"], figures["test_loss"]])
    notes = [
        f"ensemble directory: {directory}",
        (
            f"test samples: {metrics['test_samples']}; best member {metrics['best_member_test_accuracy']:.4f}, "
            f"mean member {metrics['mean_member_test_accuracy']:.4f}, ensemble ({chosen}) {metrics['test_accuracy']:.4f}"
        ),
        f"export: {metrics['export']}",
    ]
    return render_table(
        f"ensemble of {len(metrics['members'])} members (* = --combine)",
        ["member", "seed", "bootstrap", "test_accuracy", "test_loss"],
        rows,
        fmt,
        notes=notes,
    )


def register(app: typer.Typer) -> None:
    @app.command()
    def ensemble(
        sources: list[str] = typer.Argument(
            ..., help="Members: run directories, and/or spec files (or bundled names) to train."
        ),
        members: int = typer.Option(
            1, "--members", "-n", help="Train each spec N times, seeds train.seed, +1, +2, ..."
        ),
        bagging: bool = typer.Option(
            False,
            "--bagging",
            help="Each trained member learns from its own bootstrap resample of the training set.",
        ),
        method: str = typer.Option(
            "average",
            "--combine",
            help="average (mean of probabilities) or vote (majority of predicted classes).",
        ),
        overrides: list[str] | None = SetOpt,
        epochs: int | None = EpochsOpt,
        data_dir: Path | None = DataDirOpt,
        out: Path | None = typer.Option(
            None,
            "--out",
            "-o",
            help="Ensemble directory (default runs/<name>-ensemble-<timestamp>); an unfinished one continues.",
        ),
        backend: str | None = BackendOpt,
        no_export: bool = typer.Option(False, "--no-export", help="Skip exporting the combined model."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No per-epoch output while members train."),
        fmt: str | None = format_option(TABLE_FORMATS),
        json_out: bool = JsonOpt,
    ) -> None:
        """Train or collect the members, report every member and the ensemble, export one averaging model."""
        fmt = pick_format(fmt, json_out)
        result = kb.ensemble(
            sources,
            [*(overrides or ()), *epochs_override(epochs)],
            members=members,
            bagging=bagging,
            combine=method,
            data_dir=data_dir,
            out=out,
            backend=checked_backend(backend),
            verbose=0 if (quiet or fmt == "json") else None,
            export=not no_export,
        )
        Output(fmt == "json").result(
            {"ok": True, "directory": str(result.directory), **result.metrics},
            summary(result.metrics, result.directory, fmt),
        )
