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

from kbuilder.cli.common import MaxParamsOpt, SetOpt, apply_max_params, quiet_tensorflow
from kbuilder.errors import UsageError
from kbuilder.zoo import spec_path

BACKEND_CHOICES = ("tensorflow", "jax", "torch")


def command_overrides(
    *,
    epochs: int | None,
    batch_size: int | None,
    backend: str | None,
    coordinator: str | None,
    num_processes: int | None,
    process_id: int | None,
) -> list[str]:
    """Command-line options become `--set` overrides, so they are validated like the file and
    recorded in the run's resolved spec."""
    pairs = [
        ("train.epochs", epochs),
        ("train.batch_size", batch_size),
        ("train.backend", backend),
        ("train.distribute.coordinator_address", coordinator),
        ("train.distribute.num_processes", num_processes),
        ("train.distribute.process_id", process_id),
    ]
    return [f"{key}={value}" for key, value in pairs if value is not None]


def resolve_spec_source(spec: str | None, resume: Path | None, out: Path | None) -> tuple[Path, Path | None]:
    """(spec file, run directory): --resume reads the run's own resolved spec and writes back into it."""
    if resume is None:
        if spec is None:
            raise UsageError("give a SPEC file (or --resume RUN_DIR to continue an interrupted run)")
        return spec_path(spec), out
    from kbuilder.train.rundir import SPEC_FILE

    if out is not None and Path(out).resolve() != Path(resume).resolve():
        raise UsageError("--resume writes into the run directory it continues; leave out --out")
    if Path(resume).is_file():
        raise UsageError(
            f"--resume takes the run directory of an interrupted run; {resume} is a file "
            "(kbuilder never loads a model file to resume)"
        )
    saved = Path(resume) / SPEC_FILE
    if not saved.is_file():
        raise UsageError(f"{resume} is not a run directory (it has no {SPEC_FILE})")
    if spec is not None and spec_path(spec).resolve() != saved.resolve():
        raise UsageError(f"--resume uses the spec saved in {resume}; leave out SPEC (or pass {saved})")
    return saved, Path(resume)


def register(app: typer.Typer) -> None:
    @app.command()
    def train(
        spec: str | None = typer.Argument(
            None, help="Spec file (YAML) with a train section, or a bundled spec name."
        ),
        overrides: list[str] | None = SetOpt,
        data_dir: Path | None = typer.Option(
            None,
            "--data-dir",
            help="Folder searched first for <name>.npz of the Keras data sets (also KBUILDER_DATA_DIR).",
        ),
        out: Path | None = typer.Option(
            None,
            "--out",
            "-o",
            help="Run directory (default runs/<name>-<timestamp>); an unfinished one resumes.",
        ),
        resume: Path | None = typer.Option(
            None, "--resume", help="Continue the interrupted run in this run directory."
        ),
        backend: str | None = typer.Option(
            None, "--backend", help="Keras backend: tensorflow (default), jax or torch."
        ),
        epochs: int | None = typer.Option(None, "--epochs", help="Shorthand for --set train.epochs=N."),
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
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No per-epoch output, only the summary."),
        json_out: bool = typer.Option(False, "--json", help="Print metrics.json instead of the summary."),
        max_params: str | None = MaxParamsOpt,
    ) -> None:
        """Train SPEC's model as its `train` section says; everything lands in a run directory."""
        if backend is not None and backend not in BACKEND_CHOICES:
            from kbuilder.errors import did_you_mean

            raise UsageError(
                f"unknown backend '{backend}'{did_you_mean(backend, BACKEND_CHOICES)}; choose one of {', '.join(BACKEND_CHOICES)}"
            )
        apply_max_params(max_params)
        from kbuilder.spec import load_spec

        spec_file, run_dir = resolve_spec_source(spec, resume, out)
        extra = command_overrides(
            epochs=epochs,
            batch_size=batch_size,
            backend=backend,
            coordinator=coordinator,
            num_processes=num_processes,
            process_id=process_id,
        )
        loaded = load_spec(spec_file, overrides=[*(overrides or ()), *extra])
        from kbuilder.backend import select_backend

        chosen = select_backend(backend or (loaded.spec.train.backend if loaded.spec.train else None))
        quiet_tensorflow(chosen)
        from kbuilder.train import TrainOptions
        from kbuilder.train import train as run_training
        from kbuilder.train.options import summary_lines

        result = run_training(
            loaded,
            TrainOptions(
                data_dir=data_dir,
                out=run_dir,
                backend=chosen,
                verbose=0 if (quiet or json_out) else None,
                export=not no_export,
            ),
        )
        from kbuilder.cli.output import Output

        Output(json_out).result(
            {"ok": True, "run_dir": str(result.run_dir), **result.metrics},
            "".join(line + "\n" for line in summary_lines(result)),
        )
