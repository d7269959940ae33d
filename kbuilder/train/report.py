"""The finish stage: test evaluation, saved models, export, metrics.json and curves.png."""

from __future__ import annotations

import platform
from typing import Any

import keras

from kbuilder.backend import tensorboard_available, tensorflow_available
from kbuilder.errors import KBuilderError, RuntimeFailure
from kbuilder.storage import rundir as rd
from kbuilder.train.calibration import CALIBRATION_SAMPLES
from kbuilder.train.callbacks import enabled_callback
from kbuilder.train.compile import outputs_logits
from kbuilder.train.contract import input_contract
from kbuilder.train.fit import eval_feed
from kbuilder.train.options import TrainResult
from kbuilder.train.peak import machine_peak
from kbuilder.train.performance import model_macs
from kbuilder.train.plots import plot_curves
from kbuilder.train.run import TrainingRun
from kbuilder.train.utilization import utilization


def finish(run: TrainingRun) -> TrainResult:
    """Fill `run.metrics`, keep last.keras and the curves, export, then write metrics.json.
    The backup goes last: a kill before metrics.json still resumes from it."""
    rows = run.recorder.rows
    run.metrics = {"model": run.spec.name, "spec_file": str(run.loaded.path) if run.loaded.path else None}
    for key in sorted({k for r in rows for k in r} - {"epoch", "seconds", "learning_rate", "phase"}):
        run.metrics[f"{key}" if key.startswith("val_") else f"train_{key}"] = _final(rows, key)
    if run.splits.test is not None:
        figures = run.model.evaluate(**eval_feed(run, run.splits.test), verbose=0, return_dict=True)
        run.metrics.update({f"test_{k}": float(v) for k, v in figures.items()})
    run.metrics["weights"] = weights_used(run)
    if run.phases:
        run.metrics["phases"] = run.phases
    run.metrics.update(_timing(run))
    run.metrics.update(_environment(run))
    run.metrics["utilization"] = _utilization(run)
    run.metrics["tensorboard"] = _tensorboard(run)
    rd.save_model(run.model, run.run_dir / rd.LAST_MODEL)
    plot_curves(rows, run.run_dir / rd.CURVES, title=f"{run.spec.name} ({run.settings.backend})")
    export_problem = _export(run) if run.options.export else None
    rd.write_json(run.run_dir / rd.METRICS_FILE, run.metrics)
    rd.remove_backup(run.run_dir)  # only now: a kill before metrics.json still resumes from the backup
    if export_problem:
        raise RuntimeFailure(
            f"training finished and {run.run_dir.path} is complete except the export: {export_problem}"
        )
    return TrainResult(run.run_dir.path, run.metrics, rows)


def weights_used(run: TrainingRun) -> dict[str, Any]:
    """Which epoch's weights the test figures, last.keras and the export come from: the last
    epoch's, unless early stopping put its best epoch's back (restore_best_weights).
    best.keras (best.json) is the checkpoint's best epoch either way."""
    rows = run.recorder.rows
    last = rows[-1]["epoch"] if rows else run.start_epoch
    restored = next(
        (
            c
            for c in run.callbacks
            if isinstance(c, keras.callbacks.EarlyStopping)
            and c.restore_best_weights
            and c.best_weights is not None
        ),
        None,
    )
    if restored is not None and restored.best_epoch + 1 != last:
        chosen = {"from": "best", "epoch": restored.best_epoch + 1, "monitor": restored.monitor}
    else:
        chosen = {"from": "last", "epoch": last}
    best = rd.read_best(run.run_dir)
    return {
        **chosen,
        "used_for": "test_* figures, last.keras and export/",
        "best_keras_epoch": best.get("epoch") if best else None,
    }


def _final(rows: list[dict], key: str) -> float | None:
    for row in reversed(rows):
        if isinstance(row.get(key), (int, float)):
            return float(row[key])
    return None


def _timing(run: TrainingRun) -> dict[str, Any]:
    """Epochs run and where the time went; throughput counts the training part of each epoch."""
    rows, recorder, plan = run.recorder.rows, run.recorder, run.plan
    epochs = run.train_spec.epochs
    train_only = sum(recorder.train_seconds)
    samples = plan.batches * plan.batch_size * len(recorder.epoch_seconds)
    return {
        "epochs": epochs,
        "epochs_run": rows[-1]["epoch"] if rows else 0,
        "resumed_after_epoch": run.resume_epoch,
        "stopped_early": bool(rows) and rows[-1]["epoch"] < epochs,
        "train_seconds": round(run.fit_seconds, 3),
        "epoch_seconds": [round(s, 3) for s in recorder.epoch_seconds],
        "epoch_train_seconds": [round(s, 3) for s in recorder.train_seconds],
        "samples_per_second": round(samples / train_only, 1) if train_only else None,
        "samples_per_second_after_first_epoch": _steady_rate(recorder.train_seconds, run),
    }


def _steady_rate(seconds: list[float], run: TrainingRun) -> float | None:
    """Throughput without the first epoch, which includes compiling."""
    later = seconds[1:]
    if not later or sum(later) <= 0:
        return None
    return round(run.plan.batches * run.plan.batch_size * len(later) / sum(later), 1)


def _utilization(run: TrainingRun) -> dict[str, Any]:
    """Achieved training FLOP/s from the model's MACs and the steady throughput, against the
    machine's peak (kbuilder.train.utilization, kbuilder.train.peak)."""
    steady = run.metrics.get("samples_per_second_after_first_epoch")
    rate, basis = (
        (steady, "epochs after the first")
        if steady
        else (run.metrics.get("samples_per_second"), "all epochs")
    )
    settings = run.settings
    peak = machine_peak(
        settings.backend,
        settings.device,
        accelerator=settings.accelerator,
        mixed_precision=settings.mixed_precision,
        threads=settings.threads,
    )
    return utilization(model_macs(run.model), rate, peak, basis=basis)


def _environment(run: TrainingRun) -> dict[str, Any]:
    """The backend, device and settings the run had, and the data it saw."""
    settings, dist, plan, splits = run.settings, run.dist, run.plan, run.splits
    return {
        "backend": settings.backend,
        "device": settings.device,
        "keras_version": keras.__version__,
        "python": platform.python_version(),
        "settings": {
            **settings.as_dict(),
            "batch_size": plan.batch_size,
            "batches_per_epoch": plan.batches,
            "distribution": dist.kind,
            "replicas": dist.replicas,
            "processes": dist.processes,
            "process_id": dist.process_id,
        },
        "data": {
            "origin": splits.origin,
            "train_samples": len(splits.train),
            "validation_samples": len(splits.validation) if splits.validation is not None else 0,
            "test_samples": len(splits.test) if splits.test is not None else 0,
            "normalize_statistics": run.statistics.normalize,
            "class_names": run.class_names,
            "input_contract": contract(run),
        },
    }


def contract(run: TrainingRun) -> dict[str, Any]:
    """The raw-input contract of the trained model (kbuilder.train.contract)."""
    loss = run.loss
    logits = outputs_logits(run.model, loss)
    return input_contract(
        run.train_spec.data,
        run.statistics,
        input_shape=tuple(run.input_shape),
        input_dtype=str(next(iter(run.spec.inputs.values())).dtype),
        output_shape=tuple(int(d) for d in run.model.outputs[0].shape[1:] if d is not None),
        loss_name=loss.name,
        logits=logits,
        class_names=run.class_names,
    )


def _tensorboard(run: TrainingRun) -> str:
    if enabled_callback(run.train_spec, "tensorboard") is None:
        return "off (train.callbacks: tensorboard enabled: false)"
    if not tensorboard_available():
        return "skipped: TensorBoard logs need the tensorflow and tensorboard packages"
    return str(run.run_dir / rd.LOG_DIR)


def _export(run: TrainingRun) -> str | None:
    """SavedModel + .keras + manifest via kbuilder.export; returns a problem or None."""
    metrics = run.metrics
    if not tensorflow_available():
        metrics["export"] = "skipped: a SavedModel needs TensorFlow, which is not installed"
        return None
    # Deferred: kbuilder.export is TensorFlow's side; a JAX-only machine trains without it.
    from kbuilder.export import export_model

    manifest = {
        "model": metrics["model"],
        "spec_file": metrics["spec_file"],
        "resolved_spec": run.resolved,
        "trained": {
            "run_dir": str(run.run_dir.path),
            "model_file": "the model at the end of training (as last.keras)",
            **{k: metrics.get(k) for k in ("test_accuracy", "test_loss", "epochs_run", "backend")},
            "epoch": metrics.get("epochs_run"),
        },
        "input_contract": metrics["data"]["input_contract"],
        "class_names": run.class_names,
    }
    options = run.options
    calibration = None
    if options.quantize == "int8":  # the training split, preprocessed as it was fed
        calibration = [run.splits.train.x[:CALIBRATION_SAMPLES]]
    try:
        export_model(
            run.model,
            run.run_dir / rd.EXPORT_DIR,
            manifest=manifest,
            formats=options.export_formats,
            quantize=options.quantize,
            calibration=calibration,
        )
    except (KBuilderError, ValueError) as exc:
        metrics["export"] = f"failed: {exc}"
        return str(exc)
    metrics["export"] = str(run.run_dir / rd.EXPORT_DIR)
    return None
