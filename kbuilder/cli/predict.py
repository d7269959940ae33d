"""`kbuilder predict MODEL INPUT...`: classify images or arrays with a trained model.

kbuilder predict runs/lenet5_modern-20261206 digit.png digits/ --top-k 3
kbuilder predict runs/tune-mnist_mlp samples.npz --format csv -o predictions.csv
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import typer

import kbuilder.api as kb
from kbuilder.cli.common import JsonOpt, ModelOpt, format_option, pick_format
from kbuilder.cli.output import Output
from kbuilder.errors import UsageError
from kbuilder.storage import atomic

PREDICT_FORMATS = ("text", "plain", "json", "csv", "markdown")
SUFFIX_FORMATS = {".csv": "csv", ".json": "json", ".md": "markdown", ".txt": "plain"}


def _name(entry: dict[str, Any]) -> str:
    return entry["class_name"] if entry["class_name"] is not None else str(entry["class_id"])


def render(rows: list[dict[str, Any]], fmt: str) -> str:
    """The predictions as csv (one row per input and rank), a markdown table or plain lines."""
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["input", "rank", "class_id", "class_name", "probability"])
        for row in rows:
            for rank, entry in enumerate(row["top"], start=1):
                writer.writerow(
                    [
                        row["input"],
                        rank,
                        entry["class_id"],
                        entry["class_name"] or "",
                        f"{entry['probability']:.6g}",
                    ]
                )
        return buffer.getvalue()
    if fmt == "markdown":
        lines = ["| input | prediction | probability | runners-up |", "| --- | --- | --- | --- |"]
        for row in rows:
            first, rest = row["top"][0], row["top"][1:]
            others = ", ".join(f"{_name(e)} ({e['probability']:.3f})" for e in rest)
            lines.append(f"| {row['input']} | {_name(first)} | {first['probability']:.4f} | {others} |")
        return "\n".join(lines) + "\n"
    return "".join(
        f"{row['input']}: " + ", ".join(f"{_name(e)} {e['probability']:.4f}" for e in row["top"]) + "\n"
        for row in rows
    )


def register(app: typer.Typer) -> None:
    @app.command()
    def predict(
        model: Path = typer.Argument(..., help="A run, ensemble, export or tune study directory."),
        inputs: list[Path] = typer.Argument(
            ..., help="Image files (PNG, JPEG, BMP), folders of them, .npy/.npz."
        ),
        which: str = ModelOpt,
        top_k: int = typer.Option(3, "--top-k", "-k", help="Classes shown per input."),
        batch_size: int = typer.Option(256, "--batch-size", help="Inputs per model call."),
        out: Path | None = typer.Option(
            None, "--output", "-o", help="Write the predictions to a file (.csv, .json, .md by its suffix)."
        ),
        fmt: str | None = format_option(PREDICT_FORMATS),
        json_out: bool = JsonOpt,
        weights: Path | None = typer.Option(
            None,
            "--weights",
            help="Predict with these weights instead of the trained ones, matched by the run's spec "
            "(docs/weights.md).",
        ),
    ) -> None:
        """Classify images or arrays with a trained model, preprocessed exactly as in training."""
        chosen = pick_format(fmt, json_out, PREDICT_FORMATS)
        chosen = "plain" if chosen == "rich" else chosen
        file_format = SUFFIX_FORMATS.get(out.suffix.lower(), chosen) if out is not None else None
        if out is not None and out.is_dir():
            raise UsageError(f"-o {out} is a folder; give a file name (.csv, .json or .md)")
        result = kb.predict(model, inputs, which=which, top_k=top_k, batch_size=batch_size, weights=weights)
        rows = result["top"]
        document = {"ok": True, "model": result["model"], "predictions": rows}
        if out is not None:
            text = (
                json.dumps(document, indent=2) + "\n"
                if file_format == "json"
                else render(rows, file_format or "csv")
            )
            atomic.write_text(out, text)
            document["output"] = str(out)
        if chosen == "json":
            Output(True).result(document, "")
            return
        text = render(rows, chosen) if out is None else f"wrote {len(rows)} predictions to {out}\n"
        Output(False).result(document, text)
