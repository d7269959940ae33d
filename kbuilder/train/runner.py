"""`train(loaded, options)`: data -> model -> fit -> evaluate -> export, into a run directory."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kbuilder.errors import RuntimeFailure, UsageError
from kbuilder.storage import rundir as rd
from kbuilder.train.safe_keras import inspect_keras_file


@dataclass
class TrainOptions:
    """Command-line settings that are not part of the spec."""

    data_dir: str | Path | None = None
    out: str | Path | None = None
    backend: str | None = None
    verbose: int | None = None  # None: progress bars on a terminal, one line per epoch otherwise
    export: bool = True
    runs_root: str | Path = "runs"
    extra_callbacks: list[Any] = field(default_factory=list)  # e.g. a test's interruption
    build: Callable[[Any], Any] | None = None  # the model factory; default kbuilder.build.build_model
    load_splits: Callable[..., Any] | None = (
        None  # the data loader; default kbuilder.train.data.load_splits (tune caches it)
    )


@dataclass
class TrainResult:
    run_dir: Path
    metrics: dict[str, Any]
    history: list[dict[str, Any]]


def _single_io(spec) -> tuple[str, tuple]:
    if len(spec.inputs) != 1:
        raise UsageError(
            f"kbuilder train feeds models with one input; '{spec.name}' has {len(spec.inputs)} ({', '.join(spec.inputs)})"
        )
    name, input_spec = next(iter(spec.inputs.items()))
    return name, tuple(input_spec.shape)


def train(loaded, options: TrainOptions | None = None) -> TrainResult:
    options = options or TrainOptions()
    spec = loaded.spec
    if spec.train is None:
        raise UsageError(f"the spec '{spec.name}' has no train section (see README.md, 'Training')")
    settings_spec = spec.train
    from kbuilder.backend import select_backend

    backend = select_backend(options.backend or settings_spec.backend)
    input_name, input_shape = _single_io(spec)
    # Processes training together each keep a run directory of their own. It is chosen and
    # locked first, so a second process on the same --out is refused before any work.
    run_name = (
        spec.name
        if not settings_spec.distribute.multi_process
        else f"{spec.name}-p{settings_spec.distribute.process_id}"
    )
    resolved = spec.model_dump(mode="json")
    run = rd.open_run_dir(
        run_name, options.out, resolved=resolved, root=options.runs_root, check_model=inspect_keras_file
    )
    try:
        return _train_in(loaded, options, run, resolved, backend, input_name, input_shape)
    finally:
        run.release()


def _train_in(loaded, options, run, resolved, backend, input_name, input_shape) -> TrainResult:
    spec, settings_spec = loaded.spec, loaded.spec.train
    from kbuilder.train import distribute, performance

    performance.apply_threads(settings_spec.performance.threads, backend)
    distribute.join_processes(settings_spec.distribute, backend)
    resume_epoch = run.resume_epoch()
    rd.write_spec(run, resolved)

    from kbuilder.train.data import data_directory, load_splits

    spec_dir = loaded.path.parent if getattr(loaded, "path", None) else None
    splits = (options.load_splits or load_splits)(
        settings_spec.data,
        spec_dir=spec_dir,
        data_dir=data_directory(options.data_dir),
        input_shape=input_shape,
        seed=settings_spec.seed,
    )

    import keras

    if settings_spec.seed is not None:
        keras.utils.set_random_seed(settings_spec.seed)
    dist = distribute.set_up(settings_spec.distribute, backend)
    settings = performance.resolve(
        settings_spec.performance,
        backend=backend,
        distribution=dist.kind,
        has_augment=bool(settings_spec.data.augment),
        multi_process=dist.processes > 1,
    )
    previous_policy = keras.config.dtype_policy().name
    keras.config.set_dtype_policy(settings.mixed_precision)
    try:
        return _train_with(
            loaded, options, run, resolved, resume_epoch, splits, settings, dist, input_name, input_shape
        )
    finally:
        keras.config.set_dtype_policy(previous_policy)
        if dist.kind == "data_parallel":
            keras.distribution.set_distribution(None)


def _train_with(
    loaded, options, run, resolved, resume_epoch, splits, settings, dist, input_name, input_shape
) -> TrainResult:
    import numpy as np

    from kbuilder.train import compile as kc
    from kbuilder.train import performance, pipeline
    from kbuilder.train.callbacks import build_callbacks, enabled_callback, make_recorder
    from kbuilder.train.preprocess import check_against_model, preprocess_splits
    from kbuilder.train.report import finish_run

    spec, train_spec = loaded.spec, loaded.spec.train
    build = options.build
    if build is None:
        from kbuilder.build import build_model as build
    with dist.scope():
        model = build(loaded)
    settings = performance.settle_for_model(settings, train_spec.performance, model)
    output_shape = tuple(model.outputs[0].shape[1:])
    num_classes = int(output_shape[-1]) if output_shape and output_shape[-1] else None
    splits, statistics = preprocess_splits(
        splits, train_spec.data.preprocess, num_classes=num_classes, loss_name=train_spec.loss.name
    )
    check_against_model(
        splits,
        input_name=input_name,
        input_shape=input_shape,
        output_shape=output_shape,
        loss_name=train_spec.loss.name,
    )
    dtype = next(iter(spec.inputs.values())).dtype
    for arrays in (splits.train, splits.validation, splits.test):
        if arrays is not None and arrays.x.dtype != np.dtype(dtype):
            arrays.x = arrays.x.astype(dtype)

    lockstep = dist.processes > 1
    if lockstep and train_spec.batch_size % dist.processes:
        raise UsageError(
            f"train.batch_size {train_spec.batch_size} must be divisible by the {dist.processes} processes"
        )
    plan = pipeline.plan_batches(
        len(splits.train), train_spec.batch_size, settings.fused_steps, equal_batches=lockstep
    )
    augment = pipeline.augmenter(train_spec.data.augment, train_spec.seed)
    start_epoch = resume_epoch or 0
    if settings.pipeline == "tf_data":
        prefetch = None if train_spec.performance.prefetch == "auto" else train_spec.performance.prefetch
        train_input = pipeline.tf_dataset(
            splits.train,
            plan,
            shuffle=train_spec.data.shuffle,
            seed=train_spec.seed,
            prefetch=prefetch,
            augment=augment,
            shardable=lockstep,
            start_epoch=start_epoch,
        )
    else:
        train_input = pipeline.numpy_batches(
            splits.train,
            plan,
            shuffle=train_spec.data.shuffle,
            seed=train_spec.seed,
            start_epoch=start_epoch,
            augment=augment,
        )
    eval_bs = train_spec.performance.eval_batch_size

    def eval_input(arrays):
        if lockstep:
            batch, used = pipeline.lockstep_eval_batch(len(arrays), dist.processes, eval_bs)
            return {"x": pipeline.tf_eval_dataset(arrays.head(used), batch, whole_batches=True)}
        if settings.pipeline == "tf_data":
            return {"x": pipeline.tf_eval_dataset(arrays, eval_bs)}
        return {"x": arrays.x, "y": arrays.y, "batch_size": eval_bs}

    with dist.scope():
        optimizer = kc.make_optimizer(
            train_spec.optimizer, steps_per_epoch=plan.batches, epochs=train_spec.epochs
        )
        loss, logits = kc.make_loss(train_spec.loss, model)
        model.compile(
            optimizer=optimizer,
            loss=loss,
            metrics=kc.make_metrics(train_spec.metrics, train_spec.loss.name, logits),
            jit_compile=settings.jit_compile,
            steps_per_execution=settings.keras_steps_per_execution,
        )
    if plan.fused > 1:
        example = (splits.train.x[: plan.batch_size], splits.train.y[: plan.batch_size])
        pipeline.install_fused_train_step(model, example)

    earlier = [r for r in rd.read_history(run) if r.get("epoch", 0) <= start_epoch] if resume_epoch else []
    csv = enabled_callback(train_spec, "csv_logger")
    recorder = make_recorder(run, earlier, len(splits.train), csv.separator if csv else None)
    from kbuilder.backend import tensorboard_available

    callbacks = [
        recorder,
        *build_callbacks(
            train_spec,
            run,
            has_validation=splits.validation is not None,
            start_epoch=start_epoch,
            earlier_rows=earlier,
            tensorboard_ok=tensorboard_available(),
        ),
        *options.extra_callbacks,
    ]
    verbose = options.verbose if options.verbose is not None else (1 if sys.stdout.isatty() else 2)
    if resume_epoch:
        print(f"resuming {run.path} after epoch {resume_epoch} of {train_spec.epochs}", file=sys.stderr)
    validation = splits.validation
    started = time.perf_counter()
    import warnings

    try:
        if lockstep:
            # Sharded evaluation sets have no known length; Keras warns when they end.
            warnings.filterwarnings("ignore", message="Your input ran out of data")
        model.fit(
            train_input,
            epochs=train_spec.epochs,
            verbose=verbose,
            callbacks=callbacks,
            shuffle=False,
            steps_per_epoch=(plan.batches if lockstep else plan.calls)
            if settings.pipeline == "tf_data"
            else None,
            validation_data=None if validation is None else _as_tuple(eval_input(validation)),
            validation_batch_size=eval_bs if settings.pipeline == "numpy" else None,
        )
    except KeyboardInterrupt:
        raise RuntimeFailure(
            f"interrupted; run `kbuilder train --resume {run.path}` to continue from the last saved epoch"
        ) from None
    except (ValueError, TypeError) as exc:
        raise RuntimeFailure(
            f"training failed: {type(exc).__name__}: {str(exc).strip().splitlines()[0]}"
        ) from None
    finally:
        pipeline.remove_fused_train_step(model)
    fit_seconds = time.perf_counter() - started
    _refuse_divergence(next(c for c in callbacks if hasattr(c, "diverged_at")), run)
    return finish_run(
        model=model,
        run=run,
        loaded=loaded,
        splits=splits,
        settings=settings,
        dist=dist,
        plan=plan,
        recorder=recorder,
        fit_seconds=fit_seconds,
        resume_epoch=resume_epoch,
        statistics=statistics,
        eval_input=eval_input,
        export=options.export,
        resolved=resolved,
    )


def _refuse_divergence(guard, run) -> None:
    """A NaN/inf loss ends the run with exit code 3; the checkpoints of the good epochs stay."""
    if guard.diverged_at is None:
        return
    epoch, batch, loss = guard.diverged_at
    where = f"epoch {epoch}, batch {batch}" if batch else f"epoch {epoch}"
    kept = []
    best = rd.read_best(run)
    if best is not None and (run / rd.BEST_MODEL).is_file():
        kept.append(f"{rd.BEST_MODEL} (epoch {best['epoch']}, {best['monitor']} {best['value']:.4g})")
    resume = run.resume_epoch()
    if resume:
        kept.append(f"the backup after epoch {resume}")
    raise RuntimeFailure(
        f"training diverged: the loss became {loss} at {where} and the run stopped. "
        f"Kept: {', '.join(kept) or 'nothing (no epoch finished before the loss diverged)'}. "
        "Lower train.optimizer.learning_rate (or check the data), then train into a new --out"
    )


def _as_tuple(kwargs: dict) -> Any:
    """validation_data takes a dataset or an (x, y) tuple."""
    return kwargs["x"] if "y" not in kwargs else (kwargs["x"], kwargs["y"])
