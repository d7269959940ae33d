"""`train(loaded, options)`: data -> model -> fit -> evaluate -> export, into a run directory.

This module imports no Keras: it selects the backend and sets up the process (math threads,
JAX's distributed runtime: both before the backend starts) first, then runs the stages
(kbuilder/train/stages.py), whose modules import Keras at their top.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from kbuilder.backend import select_backend
from kbuilder.errors import UsageError
from kbuilder.storage import rundir as rd
from kbuilder.train import distribute, freeze, performance
from kbuilder.train.options import TrainOptions, TrainResult
from kbuilder.train.run import TrainingRun
from kbuilder.weights.missing import spec_source_missing

if TYPE_CHECKING:
    from kbuilder.spec import LoadedSpec
    from kbuilder.spec.model import ModelSpec

__all__ = ["TrainOptions", "TrainResult", "train"]


def _single_io(spec: ModelSpec) -> tuple[str, tuple]:
    if len(spec.inputs) != 1:
        raise UsageError(
            f"kbuilder train feeds models with one input; '{spec.name}' has {len(spec.inputs)} ({', '.join(spec.inputs)})"
        )
    name, input_spec = next(iter(spec.inputs.items()))
    return name, tuple(input_spec.shape)


def _run_name(spec: ModelSpec) -> str:
    """Processes training together each keep a run directory of their own."""
    distribute = spec.train.distribute if spec.train else None
    if distribute is None or not distribute.multi_process:
        return spec.name
    return f"{spec.name}-p{distribute.process_id}"


def train(loaded: LoadedSpec, options: TrainOptions | None = None) -> TrainResult:
    """Train a loaded spec into a run directory; returns its TrainResult (run_dir, metrics, history)."""
    options = options or TrainOptions()
    spec = loaded.spec
    if spec.train is None:
        raise UsageError(f"the spec '{spec.name}' has no train section (see docs/training.md)")
    backend = select_backend(options.backend or spec.train.backend)
    input_name, input_shape = _single_io(spec)
    phase_plans = freeze.plan_phases(loaded)  # a pattern naming no layer stops here, before any work
    missing = spec_source_missing(loaded)
    if missing is not None and not (options.out and Path(options.out).exists()):  # not a resume
        raise missing  # before the run directory: a fresh run from absent weights leaves nothing
    # The run directory is chosen and locked first, so a second process on the same --out is
    # refused before any work.
    resolved = spec.model_dump(mode="json")
    run_dir = rd.open_run_dir(
        _run_name(spec),
        options.out,
        resolved=resolved,
        root=options.runs_root,
        check_model=_inspect_model_file,
    )
    try:
        run = TrainingRun(
            loaded=loaded,
            train_spec=spec.train,
            options=options,
            run_dir=run_dir,
            resolved=resolved,
            backend=backend,
            input_name=input_name,
            input_shape=input_shape,
            phase_plans=phase_plans,
        )
        set_up_process(run)
        # Deferred: the stages import Keras at their top, which must follow select_backend
        # and set_up_process above.
        from kbuilder.train.stages import run_stages

        return run_stages(run)
    finally:
        run_dir.release()


def _inspect_model_file(path: Path) -> None:
    """A resumed run's best.keras/last.keras, checked before anything loads it."""
    # safe_keras imports Keras, which this module leaves until the backend is chosen.
    from kbuilder.train.safe_keras import inspect_keras_file

    inspect_keras_file(path)


def set_up_process(run: TrainingRun) -> None:
    """The math threads and JAX's distributed runtime (both before the backend computes
    anything), the epoch a resumed run continues after, and the resolved spec in the run."""
    performance.apply_threads(run.train_spec.performance.threads, run.backend)
    distribute.join_processes(run.train_spec.distribute, run.backend)
    run.resume_epoch = run.run_dir.resume_epoch()
    rd.write_spec(run.run_dir, run.resolved)
