"""`kbuilder train`: train, evaluate and export a spec into a run directory.

    kbuilder train specs/mnist_mlp.yaml --data-dir ../shared/datasets
    kbuilder train specs/mnist_mlp.yaml --set train.epochs=3 --backend jax --out runs/try
    kbuilder train --resume runs/mnist_mlp-20260101-120000      # continue an interrupted run

Two processes on one machine (JAX, gloo collectives), same spec and seed:
    kbuilder train SPEC --backend jax --coordinator 127.0.0.1:4455 --num-processes 2 --process-id 0 --out runs/w0
    kbuilder train SPEC --backend jax --coordinator 127.0.0.1:4455 --num-processes 2 --process-id 1 --out runs/w1
"""

from __future__ import annotations

from pathlib import Path

import typer

import kbuilder.api as kb
from kbuilder.cli.common import (
    TEXT_FORMATS,
    BackendOpt,
    DataDirOpt,
    EpochsOpt,
    JsonOpt,
    MaxParamsOpt,
    SetOpt,
    WeightsOpt,
    apply_max_params,
    checked_backend,
    epochs_override,
    format_option,
    pick_format,
    weights_override,
)
from kbuilder.cli.export import parse_file_formats
from kbuilder.cli.output import Output
from kbuilder.errors import UsageError
from kbuilder.zoo import spec_path


def command_overrides(
    *,
    epochs: int | None,
    batch_size: int | None,
    coordinator: str | None,
    num_processes: int | None,
    process_id: int | None,
) -> list[str]:
    """Command-line options become `--set` overrides, so they are validated like the file and
    recorded in the run's resolved spec (`--backend` too, by kb.train)."""
    pairs = [
        ("train.batch_size", batch_size),
        ("train.distribute.coordinator_address", coordinator),
        ("train.distribute.num_processes", num_processes),
        ("train.distribute.process_id", process_id),
    ]
    return [*epochs_override(epochs), *(f"{key}={value}" for key, value in pairs if value is not None)]


def register(app: typer.Typer) -> None:
    @app.command()
    def train(
        spec: str | None = typer.Argument(
            None, help="Spec file (YAML) with a train section, or a bundled spec name."
        ),
        overrides: list[str] | None = SetOpt,
        data_dir: Path | None = DataDirOpt,
        out: Path | None = typer.Option(
            None,
            "--out",
            "-o",
            help="Run directory (default runs/<name>-<timestamp>); an unfinished one resumes.",
        ),
        resume: Path | None = typer.Option(
            None, "--resume", help="Continue the interrupted run in this run directory."
        ),
        backend: str | None = BackendOpt,
        epochs: int | None = EpochsOpt,
        batch_size: int | None = typer.Option(
            None, "--batch-size", help="Shorthand for --set train.batch_size=N."
        ),
        coordinator: str | None = typer.Option(
            None, "--coordinator", help="host:port of process 0 (multi-process, JAX)."
        ),
        num_processes: int | None = typer.Option(
            None, "--num-processes", help="Processes training together."
        ),
        process_id: int | None = typer.Option(
            None, "--process-id", help="This process's index (0 is the coordinator)."
        ),
        no_export: bool = typer.Option(False, "--no-export", help="Skip the SavedModel export."),
        to: list[str] | None = typer.Option(
            None,
            "--to",
            "-t",
            help="The export also writes onnx and/or tflite (comma-separated or repeated).",
        ),
        quantize: str = typer.Option(
            "none", "--quantize", help="The TFLite file's quantization: none, float16, int8."
        ),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No per-epoch output, only the summary."),
        fmt: str | None = format_option(TEXT_FORMATS),
        json_out: bool = JsonOpt,
        max_params: str | None = MaxParamsOpt,
        weights: str | None = WeightsOpt,
    ) -> None:
        """Train SPEC's model as its `train` section says; everything lands in a run directory."""
        json_mode = pick_format(fmt, json_out, TEXT_FORMATS) == "json"
        formats = parse_file_formats(to or [])
        if quantize != "none" and "tflite" not in formats:
            raise UsageError(f"--quantize {quantize} applies to the TFLite file: add --to tflite")
        backend = checked_backend(backend)
        apply_max_params(max_params)
        extra = command_overrides(
            epochs=epochs,
            batch_size=batch_size,
            coordinator=coordinator,
            num_processes=num_processes,
            process_id=process_id,
        )
        if weights is not None and resume is not None:
            raise UsageError(
                "--weights starts a run from other weights; a resumed run restores its own checkpoint"
            )
        extra += weights_override(weights)  # loaded once, before the first epoch
        result = kb.train(
            None if spec is None else spec_path(spec),
            [*(overrides or ()), *extra],
            data_dir=data_dir,
            out=out,
            resume=resume,
            backend=backend,
            verbose=0 if (quiet or json_mode) else None,
            export=not no_export,
            export_formats=formats,
            quantize=quantize,
        )
        from kbuilder.train.options import summary_lines  # loaded with the training run

        Output(json_mode).result(
            {"ok": True, "run_dir": str(result.run_dir), **result.metrics},
            "".join(line + "\n" for line in summary_lines(result)),
        )
