"""Using a trained model: evaluate, inspect, and the HTML report of a run, ensemble or study.

Each takes a run directory, an ensemble directory or a tune study (its best trial) and
returns plain objects: dicts of figures and the paths of the files written. Keras loads
inside the functions, after the backend was chosen.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kbuilder.backend import before_keras, select_backend


def _start(backend: str | None) -> None:
    """Choose the backend before kbuilder.use imports Keras (quietly, as every command does)."""
    select_backend(backend)
    before_keras(backend)


def _load(
    target: str | Path, model: str, overrides: Sequence[str] = (), data_dir: str | Path | None = None
) -> Any:
    # Keras: the backend was chosen; an ensemble kept without its export is built as
    # `kbuilder ensemble` builds it (kbuilder.experiments, above kbuilder.use).
    from kbuilder.experiments.ensemble.model import ensemble_of_runs
    from kbuilder.use.source import load_trained

    return load_trained(
        target, which=model, overrides=overrides, data_dir=data_dir, build_ensemble=ensemble_of_runs
    )


def evaluate(
    target: str | Path,
    *,
    data: str | None = None,
    overrides: Sequence[str] = (),
    model: str = "best",
    data_dir: str | Path | None = None,
    out: str | Path | None = None,
    top_k: int = 5,
    mistakes: int = 25,
    batch_size: int | None = None,
    backend: str | None = None,
) -> dict[str, Any]:
    """Evaluate a run (`model` best or last), an ensemble or a study's best trial on its test
    set, or on `data` (a Keras data set name, an .npz file or an image folder; `overrides`
    set other `train.data.*` values). Writes evaluation.json and its PNG figures into the
    target directory (or `out`), refreshes the target's report.html when writing there, and
    returns the evaluation document.

    Example: `kb.evaluate("runs/lenet5")["metrics"]["accuracy"]`"""
    _start(backend)
    from kbuilder.use.sources import data_overrides

    trained = _load(target, model, data_overrides(data, overrides), data_dir)
    from kbuilder.use.evaluate import evaluate_trained
    from kbuilder.use.report_html import write_report

    document = evaluate_trained(
        trained,
        whole=data is not None,
        data_dir=data_dir,
        out=out,
        top_k=top_k,
        mistakes=mistakes,
        batch_size=batch_size,
    )
    if out is None:
        document["files"]["report"] = str(write_report(trained.path))
    return document


def inspect(
    target: str | Path,
    image: str | Path,
    *,
    layers: Sequence[str] | None = None,
    class_index: int | None = None,
    cam_layer: str | None = None,
    model: str = "best",
    out: str | Path | None = None,
    backend: str | None = None,
) -> dict[str, Any]:
    """Feature maps (of every convolution and pooling layer, or `layers`), the first
    convolution's filters and Grad-CAM (for the predicted class, or `class_index`) of one
    image file; written to `out` (default <run>/inspect/<image name>/). Returns the
    prediction and the files.

    Example: `kb.inspect("runs/lenet5", "digit.png")["files"]`"""
    _start(backend)
    trained = _load(target, model)
    from kbuilder.use.inspect import inspect_image

    return inspect_image(
        trained,
        image,
        layers=list(layers) if layers else None,
        class_index=class_index,
        cam_layer_name=cam_layer,
        out=out,
    )


def run_report(directory: str | Path, *, backend: str | None = None) -> Path:
    """(Re)write report.html of a run, an ensemble or a study directory; returns its path.

    Example: `kb.run_report("runs/lenet5")`"""
    _start(backend)
    from kbuilder.use.report_html import write_report  # Keras: the layer table builds the model

    return write_report(directory)
