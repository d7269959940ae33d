"""The fit stage: the run's callbacks, `model.fit`, and the refusal of a diverged run."""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

from kbuilder.errors import Interrupted, RuntimeFailure, ctrl_c_pressed
from kbuilder.storage import rundir as rd
from kbuilder.train import performance, pipeline
from kbuilder.train.callbacks import EpochRecorder, build_callbacks, enabled_callback
from kbuilder.train.checkpoints import DivergenceGuard
from kbuilder.train.data import Arrays
from kbuilder.train.progress import EpochProgress
from kbuilder.train.run import TrainingRun


def eval_feed(run: TrainingRun, arrays: Arrays) -> dict[str, Any]:
    """`model.evaluate`'s data arguments for a validation or test split."""
    batch_size = run.train_spec.performance.eval_batch_size
    if run.lockstep:
        batch, used = pipeline.lockstep_eval_batch(len(arrays), run.dist.processes, batch_size)
        return {"x": pipeline.tf_eval_dataset(arrays.head(used), batch, whole_batches=True)}
    if run.settings.pipeline == "tf_data":
        return {"x": pipeline.tf_eval_dataset(arrays, batch_size)}
    return {"x": arrays.x, "y": arrays.y, "batch_size": batch_size}


def make_callbacks(run: TrainingRun) -> None:
    """The recorder (with the history rows of a resumed run's earlier epochs), the progress
    line, the spec's callbacks and the caller's extra ones."""
    start = run.start_epoch
    earlier = [r for r in rd.read_history(run.run_dir) if r.get("epoch", 0) <= start] if start else []
    csv = enabled_callback(run.train_spec, "csv_logger")
    run.recorder = EpochRecorder(run.run_dir, earlier, len(run.splits.train), csv.separator if csv else None)
    spec_callbacks = build_callbacks(
        run.train_spec,
        run.run_dir,
        has_validation=run.splits.validation is not None,
        start_epoch=start,
        earlier_rows=earlier,
    )
    run.guard = next(c for c in spec_callbacks if isinstance(c, DivergenceGuard))
    verbose = run.options.verbose if run.options.verbose is not None else (1 if sys.stdout.isatty() else 2)
    # Keras's own bar counts its steps, which are up to a hundred batches each here. The line
    # comes right after the recorder (which adds the learning rate), before the checkpoints:
    # an epoch whose backup exists has been shown.
    progress = (
        [
            EpochProgress(
                epochs=run.train_spec.epochs,
                batches=run.plan.batches,
                batches_per_call=run.plan.fused * run.settings.keras_steps_per_execution,
                live=verbose == 1,
            )
        ]
        if verbose
        else []
    )
    run.callbacks = [run.recorder, *progress, *spec_callbacks, *run.options.extra_callbacks]


def fit(run: TrainingRun, fit_all: Callable[[TrainingRun], None] | None = None) -> None:
    """`model.fit` over the planned batches (or `fit_all`: a phased run's fits). Ctrl-C ends
    the run with Interrupted (exit 130), a failure inside Keras or a diverged loss with a
    RuntimeFailure; each says what was kept."""
    make_callbacks(run)
    train_spec = run.train_spec
    note = performance.slow_settings_note(run.settings, train_spec.performance)
    if note and run.options.verbose != 0:
        print(note, file=sys.stderr)
    if run.resume_epoch:
        print(
            f"resuming {run.run_dir.path} after epoch {run.resume_epoch} of {train_spec.epochs}",
            file=sys.stderr,
        )
    started = time.perf_counter()
    try:
        if run.lockstep:
            # Sharded evaluation sets have no known length; Keras warns when they end.
            warnings.filterwarnings("ignore", message="Your input ran out of data")
        if ctrl_c_pressed():  # pressed while the run prepared, and swallowed on the way
            raise KeyboardInterrupt
        if fit_all is not None:
            fit_all(run)
        else:
            run.model.fit(run.train_input, epochs=train_spec.epochs, verbose=0, **fit_arguments(run))
    except KeyboardInterrupt:
        for callback in run.callbacks:
            if isinstance(callback, EpochProgress):
                callback.break_line()
        raise Interrupted(interrupted_message(run)) from None
    except (ValueError, TypeError) as exc:
        raise RuntimeFailure(
            f"training failed: {type(exc).__name__}: {str(exc).strip().splitlines()[0]}"
        ) from None
    finally:
        pipeline.remove_fused_train_step(run.model)
    run.fit_seconds = time.perf_counter() - started
    _refuse_divergence(run.guard, run.run_dir)


def interrupted_message(run: TrainingRun) -> str:
    """What Ctrl-C kept and how to go on: the same command resumes a run it named (--out,
    --resume); without --out it would start a new run directory, so the message names it."""
    saved = run.run_dir.resume_epoch()
    kept = f"epoch {saved} of {run.train_spec.epochs} saved" if saved else "no epoch finished"
    again = "resume" if saved else "start again"
    if run.options.out is not None:
        return f"interrupted ({kept}); run the same command to {again}"
    return f"interrupted ({kept}); run the same command with --out {run.run_dir.path} to {again}"


def fit_arguments(run: TrainingRun) -> dict[str, Any]:
    """Callbacks, steps and validation data as the input pipeline needs them."""
    tf_data = run.settings.pipeline == "tf_data"
    validation = run.splits.validation
    return {
        "callbacks": run.callbacks,
        "shuffle": False,
        "steps_per_epoch": (run.plan.batches if run.lockstep else run.plan.calls) if tf_data else None,
        "validation_data": None if validation is None else _as_tuple(eval_feed(run, validation)),
        "validation_batch_size": (
            run.train_spec.performance.eval_batch_size if run.settings.pipeline == "numpy" else None
        ),
    }


def _refuse_divergence(guard: DivergenceGuard, run: rd.RunDir) -> None:
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
