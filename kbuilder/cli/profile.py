"""`kbuilder profile`: where a model's time and memory go on this machine.

kbuilder profile lenet5_modern --batch-size 128 --train
kbuilder profile fashion_cnn --batch-size 32 --batch-size 128 --memory 8GiB --plot tp.png
kbuilder profile specs/mnist_mlp.yaml --format markdown
"""

from __future__ import annotations

from pathlib import Path

import typer

import kbuilder.api as kb
from kbuilder.cli.common import (
    BackendOpt,
    JsonOpt,
    SetOpt,
    SpecArg,
    checked_backend,
    format_option,
    pick_format,
)
from kbuilder.cli.output import Output
from kbuilder.errors import UsageError
from kbuilder.profile.options import PROFILE_FORMATS, parse_size
from kbuilder.zoo import spec_path


def register(app: typer.Typer) -> None:
    @app.command()
    def profile(
        spec: str = SpecArg,
        overrides: list[str] | None = SetOpt,
        batch_size: list[int] | None = typer.Option(
            None,
            "--batch-size",
            "-b",
            help="Batch size (repeatable): the first one's layers are timed; throughput and memory at each "
            "(default: the spec's train.batch_size, else 32).",
        ),
        train: bool = typer.Option(False, "--train", help="Time each layer's backward pass too."),
        memory: str | None = typer.Option(
            None, "--memory", help="A memory size (8GiB, 512MiB, 16GB): the largest batch size that fits."
        ),
        plot: Path | None = typer.Option(
            None, "--plot", help="Write samples/s against batch size to this PNG file."
        ),
        repeats: int = typer.Option(
            10, "--repeats", help="Timed calls per measurement (the fastest counts; at least 3)."
        ),
        backend: str | None = BackendOpt,
        fmt: str | None = format_option(PROFILE_FORMATS),
        json_out: bool = JsonOpt,
    ) -> None:
        """Time SPEC's model layer by layer (as `caffe time`), its memory per batch size and its
        throughput, against the machine's peak arithmetic rate."""
        chosen = pick_format(fmt, json_out, PROFILE_FORMATS)
        fmt = "table" if chosen in ("rich", "plain") else chosen
        budget = parse_size(memory) if memory is not None else None
        if plot is not None and plot.suffix.lower() != ".png":
            raise UsageError(f"--plot {plot}: the plot is a PNG file; give a name ending in .png")
        result = kb.profile(
            spec_path(spec),
            overrides or (),
            batch_sizes=batch_size or (),
            train=train,
            memory=budget,
            backend=checked_backend(backend),
            repeats=repeats,
            plot=plot,
        )
        from kbuilder.profile.render import render  # with the measurement, which imported Keras

        data, text = render(result, fmt)
        Output(fmt == "json").result(data, text)
