"""Using a trained model: `predict` from raw inputs, and `export_trained` (what `kbuilder
export RUN_DIR DIR` calls). Keras loads with the model, so kbuilder.use is imported inside.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kbuilder.api.loading import validate
from kbuilder.api.models import load_weights
from kbuilder.backend import before_keras
from kbuilder.errors import UsageError


def predict(
    model: str | Path,
    inputs: Sequence[str | Path],
    *,
    which: str = "best",
    top_k: int = 5,
    batch_size: int = 256,
    weights: str | Path | None = None,
) -> dict[str, Any]:
    """Classify raw inputs (image files, folders of them, .npy/.npz arrays) with a trained
    model (a run, ensemble, export or tune study directory; `which`: best or last model of a
    run), preprocessed exactly as in training. Returns {"inputs": names, "probabilities":
    array [N, classes], "class_ids": top-1 ids, "class_names": names or None, "top": per-input
    top-k dicts, "model": where it came from}. `weights` (a weights source) replaces the
    trained model's weights, matched by the run's spec as `kb.load_weights` does.

    Example: `kb.predict("runs/lenet5_modern-20261206", ["digit.png"])["top"][0]`"""
    if top_k < 1:
        raise UsageError(f"--top-k must be at least 1, got {top_k}")
    before_keras()
    # Keras loads with the model (kbuilder.use): only now that the arguments were checked.
    from kbuilder.use.inputs import raw_target, read_inputs
    from kbuilder.use.predict import predict_samples
    from kbuilder.use.source import load_trained

    trained = load_trained(model, which=which)
    if weights is not None:
        from kbuilder.build import BuiltModel  # the model is loaded: Keras is in already

        built = BuiltModel(trained.model, validate(trained.loaded, shapes=False), trained.loaded)
        load_weights(built, weights)
    samples = read_inputs(list(inputs), raw_target(trained.contract))
    result = predict_samples(trained, samples, batch_size=batch_size)
    return {
        "model": trained.describe(),
        "inputs": result.names,
        "probabilities": result.probabilities,
        "class_ids": result.probabilities.argmax(axis=-1),
        "class_names": result.class_names,
        "top": result.rows(top_k),
    }


def export_trained(
    source: str | Path,
    directory: str | Path,
    *,
    which: str = "best",
    verify: bool = True,
    formats: Sequence[str] = (),
    quantize: str = "none",
    data_dir: str | Path | None = None,
) -> Path:
    """Export the trained weights of a run (`which`: best or last), an ensemble, a study's best
    trial or another export, with its input contract (so the SavedModel has `serving_raw`).

    Example: `kb.export_trained("runs/lenet5_modern-20261206", "out/lenet5", formats=["onnx"])`"""
    before_keras()
    from kbuilder.export import export_model  # Keras: loads with the model
    from kbuilder.use.source import load_trained

    trained = load_trained(source, which=which)
    metrics = trained.metrics or {}
    manifest = {
        "model": trained.model.name,
        "trained": {
            **trained.describe(),
            "test_loss": metrics.get("test_loss"),
            "epochs_run": metrics.get("epochs_run"),
        },
        "input_contract": trained.contract,
        "class_names": trained.class_names,
    }
    calibration = None
    if quantize == "int8":
        calibration = [_calibration(trained, data_dir)]
    return export_model(
        trained.model,
        Path(directory),
        manifest=manifest,
        check=verify,
        formats=formats,
        quantize=quantize,
        calibration=calibration,
    )


def _calibration(trained: Any, data_dir: str | Path | None) -> Any:
    """int8 calibration samples from the run's own training data, preprocessed as trained."""
    from kbuilder.spec import load_spec
    from kbuilder.storage.rundir import SPEC_FILE
    from kbuilder.train.calibration import spec_samples  # the training data pipeline, for int8 only

    if trained.run_dir is None or not (Path(trained.run_dir) / SPEC_FILE).is_file():
        raise UsageError("int8 calibration reads the run's training data; this source names no run directory")
    return spec_samples(load_spec(Path(trained.run_dir) / SPEC_FILE), data_dir)[0]
