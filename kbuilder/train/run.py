"""`TrainingRun`: one training run, which the stages fill in turn (no Keras import here).

The stage                      the fields it sets
- runner.train                 loaded, train_spec, options, run_dir, resolved, backend, input_*,
                               phase_plans (the patterns checked)
- runner.set_up_process        resume_epoch (after the process's threads, distributed runtime)
- prepare.load_data            splits (as loaded: not yet preprocessed)
- prepare.keras_settings       dist, settings (and the seed, distribution, dtype policy)
- prepare.build_model          model (settings settled for it)
- prepare.prepare_inputs       splits (preprocessed), statistics, class_names, plan, train_input
- prepare.compile_model        (the model compiled: optimizer, loss, metrics)
- fit.fit                      recorder, guard, callbacks, fit_seconds, phases (phased runs:
                               kbuilder/train/phases.py recompiles the model at each phase)
- report.finish                metrics (and last.keras, curves.png, export/, metrics.json)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kbuilder.spec.train.optim import LossSpec

if TYPE_CHECKING:  # the stages' types; importing them here would import Keras
    import keras

    from kbuilder.spec import LoadedSpec
    from kbuilder.spec.model import ModelSpec
    from kbuilder.spec.train import TrainSpec
    from kbuilder.storage.rundir import RunDir
    from kbuilder.train.callbacks import EpochRecorder
    from kbuilder.train.checkpoints import DivergenceGuard
    from kbuilder.train.data import Splits
    from kbuilder.train.distribute import Distribution
    from kbuilder.train.freeze import PhasePlan
    from kbuilder.train.options import TrainOptions
    from kbuilder.train.performance import Settings
    from kbuilder.train.pipeline import BatchPlan
    from kbuilder.train.preprocess import Statistics


@dataclass
class TrainingRun:
    """What one run knows; each stage reads the fields of the stages before it and sets its own."""

    # given by `train`
    loaded: LoadedSpec
    train_spec: TrainSpec
    options: TrainOptions
    run_dir: RunDir
    resolved: dict[str, Any]  # the spec as the run records it (spec.json, the export's manifest)
    backend: str
    input_name: str
    input_shape: tuple[int | None, ...]
    phase_plans: list[PhasePlan] = field(default_factory=list)  # one when the spec has no phases
    # data
    resume_epoch: int | None = None  # the epoch a resumed run continues after; None for a fresh one
    splits: Splits = field(init=False)
    # build and compile
    dist: Distribution = field(init=False)
    settings: Settings = field(init=False)
    model: keras.Model = field(init=False)
    statistics: Statistics = field(init=False)
    class_names: list[str] | None = None  # names of the output units (kbuilder.train.classes)
    plan: BatchPlan = field(init=False)
    train_input: Any = field(init=False)  # a tf.data.Dataset or a generator of numpy batches
    # fit
    recorder: EpochRecorder = field(init=False)
    guard: DivergenceGuard = field(init=False)
    callbacks: list[Any] = field(default_factory=list)
    fit_seconds: float = 0.0
    phases: list[dict[str, Any]] = field(default_factory=list)  # per phase: epochs, trainable params
    # finish
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def spec(self) -> ModelSpec:
        return self.loaded.spec

    @property
    def loss(self) -> LossSpec:
        """The loss section (the spec's validator turns a loss given by name into a LossSpec)."""
        loss = self.train_spec.loss
        return loss if isinstance(loss, LossSpec) else LossSpec.model_validate({"name": loss})

    @property
    def spec_dir(self) -> Path | None:
        """Where relative data paths in the spec start from."""
        path: Path | None = getattr(self.loaded, "path", None)  # tune's trials pass no file
        return path.parent if path else None

    @property
    def start_epoch(self) -> int:
        return self.resume_epoch or 0

    @property
    def lockstep(self) -> bool:
        """Processes training together take equal batches in step."""
        return self.dist.processes > 1
