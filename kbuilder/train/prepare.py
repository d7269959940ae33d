"""The stages before `fit`: the data, the Keras settings, the model and its inputs.

Each takes the `TrainingRun` and sets the fields named in kbuilder/train/run.py. Keras is
imported at the top: `kbuilder.train.runner.train` selects the backend and sets up the
process (threads, distributed runtime) before importing this.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import keras
import numpy as np

from kbuilder.build import BuiltModel
from kbuilder.build import build_model as default_build
from kbuilder.errors import UsageError
from kbuilder.graph import expand
from kbuilder.storage import rundir as rd
from kbuilder.train import compile as kc
from kbuilder.train import distribute, freeze, performance, pipeline
from kbuilder.train.callbacks import counts_batches
from kbuilder.train.classes import check_class_count, class_names
from kbuilder.train.data import data_directory, load_splits
from kbuilder.train.preprocess import check_against_model, preprocess_splits
from kbuilder.train.run import TrainingRun
from kbuilder.weights.load import load_weights
from kbuilder.weights.table import plan_json, summary

WEIGHTS_PLAN = "weights_plan.json"  # in the run directory: where the starting weights came from


def load_data(run: TrainingRun) -> None:
    """The splits as the spec's source gives them (preprocessing needs the model's output)."""
    load = run.options.load_splits or load_splits
    run.splits = load(
        run.train_spec.data,
        spec_dir=run.spec_dir,
        data_dir=data_directory(run.options.data_dir),
        input_shape=run.input_shape,
        seed=run.train_spec.seed,
    )


@contextmanager
def keras_settings(run: TrainingRun) -> Iterator[None]:
    """The seed, the distribution and the performance settings; the dtype policy and the
    distribution go back to what they were when the run ends, however it ends."""
    train_spec = run.train_spec
    if train_spec.seed is not None:
        keras.utils.set_random_seed(train_spec.seed)
    run.dist = distribute.set_up(train_spec.distribute, run.backend)
    run.settings = performance.resolve(
        train_spec.performance,
        backend=run.backend,
        distribution=run.dist.kind,
        has_augment=bool(train_spec.data.augment),
        multi_process=run.dist.processes > 1,
    )
    previous_policy = keras.config.dtype_policy().name
    keras.config.set_dtype_policy(run.settings.mixed_precision)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous_policy)
        if run.dist.kind == "data_parallel":
            keras.distribution.set_distribution(None)


def build_model(run: TrainingRun) -> None:
    """The model, built in the distribution's scope; the settings that depend on it settled."""
    build = run.options.build or default_build
    with run.dist.scope():
        run.model = build(run.loaded)
        if run.spec.weights is not None and run.resume_epoch is None:
            _load_start_weights(run)
    if run.phase_plans:  # train.freeze (and the first phase's freeze) over the spec's `trainable: false`
        freeze.require_trainable(freeze.apply(run.model, run.phase_plans[0]), run.phase_plans[0])
    run.settings = performance.settle_for_model(run.settings, run.train_spec.performance, run.model)


def _load_start_weights(run: TrainingRun) -> None:
    """The spec's trained weights, once, before the first epoch (a resumed run restores its
    own checkpoint instead); the plan is kept in the run directory."""
    plan = load_weights(BuiltModel(run.model, expand(run.loaded), run.loaded))
    rd.write_json(run.run_dir / WEIGHTS_PLAN, plan_json(plan))
    if run.options.verbose != 0:
        print(summary(plan), file=sys.stderr)


def prepare_inputs(run: TrainingRun) -> None:
    """The splits preprocessed and checked against the model, then the training input pipeline."""
    train_spec = run.train_spec
    output_shape = tuple(run.model.outputs[0].shape[1:])
    num_classes = int(output_shape[-1]) if output_shape and output_shape[-1] else None
    splits, run.statistics = preprocess_splits(
        run.splits, train_spec.data.preprocess, num_classes=num_classes, loss_name=run.loss.name
    )
    check_against_model(
        splits,
        input_name=run.input_name,
        input_shape=run.input_shape,
        output_shape=output_shape,
        loss_name=run.loss.name,
    )
    data = train_spec.data
    run.class_names = check_class_count(
        class_names(data, spec_dir=run.spec_dir), num_classes, given=data.classes is not None
    )
    dtype = np.dtype(next(iter(run.spec.inputs.values())).dtype)
    for arrays in (splits.train, splits.validation, splits.test):
        if arrays is not None and arrays.x.dtype != dtype:
            arrays.x = arrays.x.astype(dtype)
    run.splits = splits
    if run.lockstep and train_spec.batch_size % run.dist.processes:
        raise UsageError(
            f"train.batch_size {train_spec.batch_size} must be divisible by the {run.dist.processes} processes"
        )
    run.plan = pipeline.plan_batches(
        len(splits.train), train_spec.batch_size, run.settings.fused_steps, equal_batches=run.lockstep
    )
    run.settings = performance.settle_keras_steps(
        run.settings,
        train_spec.performance,
        run.plan.calls,
        distributed=run.dist.kind != "none",
        batch_callbacks=counts_batches(train_spec),
    )
    run.train_input = train_input(run, run.start_epoch)


def train_input(run: TrainingRun, start_epoch: int) -> object:
    """A tf.data pipeline or numpy batches whose epoch order starts after `start_epoch` (a
    resumed run's, or a phase's first), so a run cut and resumed sees the same batches."""
    train_spec = run.train_spec
    order = pipeline.SampleOrder(
        shuffle=train_spec.data.shuffle,
        seed=train_spec.seed,
        start_epoch=start_epoch,
        augment=pipeline.augmenter(train_spec.data.augment, train_spec.seed),
    )
    if run.settings.pipeline == "tf_data":
        prefetch = train_spec.performance.prefetch
        return pipeline.tf_dataset(
            run.splits.train,
            run.plan,
            order,
            prefetch=None if prefetch == "auto" else prefetch,
            shardable=run.lockstep,
        )
    return pipeline.NumpyBatches(run.splits.train, run.plan, order)


def compile_model(run: TrainingRun, optimizer_spec: object = None, epochs: int | None = None) -> None:
    """Optimizer (its schedule counted in this run's batches, or a phase's), loss and metrics;
    the fused train step where batches are fused. A phase passes its optimizer and epochs."""
    train_spec, model, plan = run.train_spec, run.model, run.plan
    with run.dist.scope():
        optimizer = kc.make_optimizer(
            optimizer_spec or train_spec.optimizer,
            steps_per_epoch=plan.batches,
            epochs=epochs or train_spec.epochs,
        )
        loss, logits = kc.make_loss(run.loss, model)
        model.compile(
            optimizer=optimizer,
            loss=loss,
            metrics=kc.make_metrics(train_spec.metrics, run.loss.name, logits),
            jit_compile=run.settings.jit_compile,
            steps_per_execution=run.settings.keras_steps_per_execution,
        )
    if plan.fused > 1:
        train = run.splits.train
        pipeline.install_fused_train_step(model, (train.x[: plan.batch_size], train.y[: plan.batch_size]))
