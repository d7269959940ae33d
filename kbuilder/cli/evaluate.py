"""`kbuilder evaluate`: a trained run's figures on its test set or another data source.

kbuilder evaluate runs/lenet5
kbuilder evaluate runs/lenet5 --data my_digits/ -o eval_mine --format json
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

import kbuilder.api as kb
from kbuilder.cli.common import (
    TABLE_FORMATS,
    BackendOpt,
    DataDirOpt,
    JsonOpt,
    ModelOpt,
    checked_backend,
    format_option,
    pick_format,
)
from kbuilder.cli.output import Output


def _tables(document: dict[str, Any], fmt: str) -> str:
    # The experiments' table renderer, loaded already with Keras by kb.evaluate.
    from kbuilder.experiments.tables import render_table

    found = document["metrics"]
    scalars = [[k, v] for k, v in found.items() if isinstance(v, (int, float)) or v is None]
    scalars.append(["samples", document["data"]["samples"]])
    notes = [f"{name}: {path}" for name, path in document["files"].items()]
    title = f"{document['target']} on {document['data']['origin']} ({document['data']['split']})"
    text = render_table(title, ["figure", "value"], scalars, fmt)
    if document.get("task") != "classification":
        return text + render_table("files", ["file", "path"], [], fmt, notes=notes)
    per_class = [[r["name"], r["precision"], r["recall"], r["f1"], r["support"]] for r in found["per_class"]]
    per_class += [
        [f"{name} avg", a["precision"], a["recall"], a["f1"], a["support"]]
        for name, a in found["averages"].items()
    ]
    text += render_table("per class", ["class", "precision", "recall", "f1", "support"], per_class, fmt)
    names = document["class_names"]
    matrix = [[names[i], *row] for i, row in enumerate(found["confusion_matrix"])]
    text += render_table("confusion matrix (rows: true, columns: predicted)", ["", *names], matrix, fmt)
    calibration = found["calibration"]
    return text + render_table(
        f"calibration: ECE {calibration['expected_calibration_error']:.4f}",
        ["confidence", "accuracy", "samples"],
        list(zip(calibration["bin_confidence"], calibration["bin_accuracy"], calibration["bin_count"])),
        fmt,
        notes=notes,
    )


def register(app: typer.Typer) -> None:
    @app.command()
    def evaluate(
        target: Path = typer.Argument(..., help="A run directory, an ensemble directory or a tune study."),
        data: str | None = typer.Option(
            None,
            "--data",
            help="Evaluate on this source: mnist, fashion_mnist, cifar10, cifar100, an .npz, an image folder.",
        ),
        overrides: list[str] | None = typer.Option(
            None,
            "--set",
            help="Override a train.data value: KEY=VALUE (repeatable), e.g. train.data.test_limit=1000.",
        ),
        model: str = ModelOpt,
        out: Path | None = typer.Option(
            None, "--output", "-o", help="Folder for evaluation.json and its figures (default: the target)."
        ),
        top_k: int = typer.Option(5, "--top-k", help="k of the top-k accuracy."),
        mistakes: int = typer.Option(25, "--mistakes", help="How many confident mistakes to show."),
        batch_size: int | None = typer.Option(
            None, "--batch-size", help="Prediction batch size (default: the run's)."
        ),
        data_dir: Path | None = DataDirOpt,
        backend: str | None = BackendOpt,
        fmt: str | None = format_option(TABLE_FORMATS),
        json_out: bool = JsonOpt,
    ) -> None:
        """Loss, accuracy, per-class figures, confusion matrix, calibration and mistakes (or MSE, MAE, R²)."""
        fmt = pick_format(fmt, json_out)
        document = kb.evaluate(
            target,
            data=data,
            overrides=overrides or (),
            model=model,
            data_dir=data_dir,
            out=out,
            top_k=top_k,
            mistakes=mistakes,
            batch_size=batch_size,
            backend=checked_backend(backend),
        )
        Output(fmt == "json").result(document, "" if fmt == "json" else _tables(document, fmt))
