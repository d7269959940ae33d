"""`kbuilder ensemble`: several trained networks combined into one model.

kbuilder ensemble specs/mnist_mlp.yaml --members 5 --data-dir ../shared/datasets     # 5 seeds
kbuilder ensemble specs/mnist_mlp.yaml --members 5 --bagging                         # + bootstrap resamples
kbuilder ensemble runs/a runs/b runs/c --combine vote                                # finished runs
"""

from __future__ import annotations

from pathlib import Path

import typer

from kbuilder.cli.common import FormatOpt, SetOpt, pick_format, quiet_tensorflow
from kbuilder.errors import UsageError

BACKEND_CHOICES = ("tensorflow", "jax", "torch")


def summary(metrics: dict, directory: Path, fmt: str) -> str:
    from kbuilder.experiments.tables import render_table

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
        f"test samples: {metrics['test_samples']}; best member {metrics['best_member_test_accuracy']:.4f}, "
        f"mean member {metrics['mean_member_test_accuracy']:.4f}, ensemble ({chosen}) {metrics['test_accuracy']:.4f}",
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
        epochs: int | None = typer.Option(None, "--epochs", help="Shorthand for --set train.epochs=N."),
        data_dir: Path | None = typer.Option(
            None,
            "--data-dir",
            help="Folder searched first for <name>.npz of the Keras data sets (also KBUILDER_DATA_DIR).",
        ),
        out: Path | None = typer.Option(
            None,
            "--out",
            "-o",
            help="Ensemble directory (default runs/<name>-ensemble-<timestamp>); an unfinished one continues.",
        ),
        backend: str | None = typer.Option(
            None, "--backend", help="Keras backend: tensorflow (default), jax or torch."
        ),
        no_export: bool = typer.Option(False, "--no-export", help="Skip exporting the combined model."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No per-epoch output while members train."),
        fmt: str | None = FormatOpt,
    ) -> None:
        """Train or collect the members, report every member and the ensemble, export one averaging model."""
        fmt = pick_format(fmt)
        if backend is not None and backend not in BACKEND_CHOICES:
            from kbuilder.errors import did_you_mean

            raise UsageError(
                f"unknown backend '{backend}'{did_you_mean(backend, BACKEND_CHOICES)}; choose one of {', '.join(BACKEND_CHOICES)}"
            )
        quiet_tensorflow(backend)
        from kbuilder.experiments.ensemble import EnsembleOptions, run_ensemble

        extra = [f"train.epochs={epochs}"] if epochs is not None else []
        result = run_ensemble(
            EnsembleOptions(
                sources=sources,
                members=members,
                bagging=bagging,
                combine=method,
                overrides=[*(overrides or ()), *extra],
                data_dir=data_dir,
                out=out,
                backend=backend,
                verbose=0 if (quiet or fmt == "json") else None,
                export=not no_export,
            )
        )
        from kbuilder.cli.output import Output

        Output(fmt == "json").result(
            {"ok": True, "directory": str(result.directory), **result.metrics},
            summary(result.metrics, result.directory, fmt),
        )
