"""The end of a run: test evaluation, saved models, export, metrics.json and curves.png."""

from __future__ import annotations

import platform
import sys
from typing import Any

from kbuilder.errors import RuntimeFailure
from kbuilder.storage import rundir as rd


def _final(rows: list[dict], key: str) -> float | None:
    for row in reversed(rows):
        if isinstance(row.get(key), (int, float)):
            return float(row[key])
    return None


def finish_run(
    *,
    model,
    run,
    loaded,
    splits,
    settings,
    dist,
    plan,
    recorder,
    fit_seconds,
    resume_epoch,
    statistics,
    eval_input,
    export: bool,
    resolved: dict,
) -> Any:
    import keras

    from kbuilder.train.plots import plot_curves
    from kbuilder.train.runner import TrainResult

    train_spec = loaded.spec.train
    rows = recorder.rows
    metrics: dict[str, Any] = {
        "model": loaded.spec.name,
        "spec_file": str(loaded.path) if loaded.path else None,
    }
    for key in sorted({k for r in rows for k in r} - {"epoch", "seconds", "learning_rate"}):
        metrics[f"{key}" if key.startswith("val_") else f"train_{key}"] = _final(rows, key)
    if splits.test is not None:
        figures = model.evaluate(**eval_input(splits.test), verbose=0, return_dict=True)
        metrics.update({f"test_{k}": float(v) for k, v in figures.items()})
    trained_epochs = len(recorder.epoch_seconds)
    train_only = sum(recorder.train_seconds)
    metrics.update(
        {
            "epochs": train_spec.epochs,
            "epochs_run": rows[-1]["epoch"] if rows else 0,
            "resumed_after_epoch": resume_epoch,
            "stopped_early": bool(rows) and rows[-1]["epoch"] < train_spec.epochs,
            "train_seconds": round(fit_seconds, 3),
            "epoch_seconds": [round(s, 3) for s in recorder.epoch_seconds],
            "epoch_train_seconds": [round(s, 3) for s in recorder.train_seconds],
            "samples_per_second": round(plan.batches * plan.batch_size * trained_epochs / train_only, 1)
            if train_only
            else None,
            "samples_per_second_after_first_epoch": _steady_rate(recorder.train_seconds, plan),
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
                "normalize_statistics": statistics.normalize,
            },
        }
    )
    from kbuilder.backend import tensorboard_available
    from kbuilder.train.callbacks import enabled_callback

    if enabled_callback(train_spec, "tensorboard") is None:
        metrics["tensorboard"] = "off (train.callbacks: tensorboard enabled: false)"
    else:
        metrics["tensorboard"] = (
            str(run / rd.LOG_DIR)
            if tensorboard_available()
            else "skipped: TensorBoard logs need the tensorflow and tensorboard packages"
        )
    rd.save_model(model, run / rd.LAST_MODEL)
    plot_curves(rows, run / rd.CURVES, title=f"{loaded.spec.name} ({settings.backend})")
    export_problem = None
    if export:
        export_problem = _export(model, run, metrics, resolved)
    rd.write_json(run / rd.METRICS_FILE, metrics)
    rd.remove_backup(run)  # only now: a kill before metrics.json still resumes from the backup
    if export_problem:
        raise RuntimeFailure(
            f"training finished and {run.path} is complete except the export: {export_problem}"
        )
    return TrainResult(run.path, metrics, rows)


def _steady_rate(seconds: list[float], plan) -> float | None:
    """Throughput without the first epoch, which includes compiling."""
    later = seconds[1:]
    if not later or sum(later) <= 0:
        return None
    return round(plan.batches * plan.batch_size * len(later) / sum(later), 1)


def _export(model, run, metrics: dict, resolved: dict) -> str | None:
    """SavedModel + .keras + manifest via kbuilder.export; returns a problem or None."""
    from kbuilder.backend import tensorflow_available

    if not tensorflow_available():
        metrics["export"] = "skipped: a SavedModel needs TensorFlow, which is not installed"
        return None
    from kbuilder.errors import KBuilderError
    from kbuilder.export import export_model

    manifest = {
        "model": metrics["model"],
        "spec_file": metrics["spec_file"],
        "resolved_spec": resolved,
        "trained": {k: metrics.get(k) for k in ("test_accuracy", "test_loss", "epochs_run", "backend")},
    }
    try:
        export_model(model, run / rd.EXPORT_DIR, manifest=manifest)
    except (KBuilderError, ValueError) as exc:
        metrics["export"] = f"failed: {exc}"
        return str(exc)
    metrics["export"] = str(run / rd.EXPORT_DIR)
    return None


def summary_lines(result) -> list[str]:
    """A few lines for the end of `kbuilder train`."""
    m = result.metrics
    lines = [f"run directory: {result.run_dir}"]
    figures = [
        f"{k}={m[k]:.4f}"
        for k in ("test_accuracy", "test_loss", "val_accuracy", "val_loss", "train_loss")
        if isinstance(m.get(k), float)
    ]
    if figures:
        lines.append("final: " + " ".join(figures))
    epochs = m.get("epoch_seconds") or []
    if epochs:
        steady = epochs[1:] or epochs
        pace = f"{sum(steady) / len(steady):.2f} s/epoch" + (" after the first" if len(epochs) > 1 else "")
        rate = m.get("samples_per_second_after_first_epoch") or m.get("samples_per_second")
        count = len(epochs)
        lines.append(
            f"{count} epoch{'s' if count != 1 else ''} in {m['train_seconds']:.1f} s ({pace}), "
            f"{rate} samples/s, {m['backend']} on {m['device']}"
        )
    if str(m.get("export", "")).startswith(("skipped", "failed")):
        lines.append(f"export {m['export']}")
    return lines


def print_summary(result, stream=None) -> None:
    stream = stream or sys.stdout
    for line in summary_lines(result):
        stream.write(line + "\n")
