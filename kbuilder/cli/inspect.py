"""`kbuilder inspect`: feature maps, first filters and Grad-CAM of a trained run on one image.

kbuilder inspect runs/lenet5 digit.png
kbuilder inspect runs/fashion shoe.png --layers conv1 --layers stage3-pool --class 7 -o look
"""

from __future__ import annotations

from pathlib import Path

import typer

import kbuilder.api as kb
from kbuilder.cli.common import (
    TEXT_FORMATS,
    BackendOpt,
    JsonOpt,
    ModelOpt,
    checked_backend,
    format_option,
    pick_format,
)
from kbuilder.cli.output import Output


def register(app: typer.Typer) -> None:
    @app.command()
    def inspect(
        target: Path = typer.Argument(..., help="A run directory (or a tune study: its best trial)."),
        image: Path = typer.Argument(..., help="An image file (PNG, JPEG, BMP) like the run's data."),
        layers: list[str] | None = typer.Option(
            None,
            "--layers",
            help="Layers whose feature maps to draw (repeatable; default: convolutions and pooling).",
        ),
        class_index: int | None = typer.Option(
            None, "--class", help="Grad-CAM for this class (default: the predicted one)."
        ),
        cam_layer: str | None = typer.Option(
            None,
            "--cam-layer",
            help="Layer Grad-CAM looks at (default: the last convolution wider than 1x1).",
        ),
        model: str = ModelOpt,
        out: Path | None = typer.Option(
            None, "--output", "-o", help="Folder for the figures (default: <run>/inspect/<image name>)."
        ),
        backend: str | None = BackendOpt,
        fmt: str | None = format_option(TEXT_FORMATS),
        json_out: bool = JsonOpt,
    ) -> None:
        """What the network computes on IMAGE: feature maps, the first convolution's filters, Grad-CAM."""
        fmt = pick_format(fmt, json_out, TEXT_FORMATS)
        found = kb.inspect(
            target,
            image,
            layers=layers,
            class_index=class_index,
            cam_layer=cam_layer,
            model=model,
            out=out,
            backend=checked_backend(backend),
        )
        lines = [
            (
                f"{found['image']}: predicted {found['predicted_name']} (class {found['predicted']}); "
                f"Grad-CAM for class {found['grad_cam']['class']} at {found['grad_cam']['layer']}"
            ),
            *found["files"],
        ]
        Output(fmt == "json").result(found, "\n".join(lines) + "\n")
