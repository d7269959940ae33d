"""`kbuilder evaluate`: a trained model's figures on its test set (or another data source).

Everything lands in `evaluation.json` with the figures beside it, in the run directory
(or the ensemble's or study's) unless another folder is given:

    evaluation.json            every figure below, the data used and the files written
    confusion_matrix.png       classification: the confusion matrix with class names
    reliability.png            classification: the reliability diagram and its ECE
    mistakes.png               classification: the most confident wrong predictions
    predicted_vs_true.png      regression: predicted against true values

Nothing is written until the whole evaluation has been computed, so a bad input leaves
the folder as it was; evaluation.json is written last.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from kbuilder.errors import DataError, UsageError
from kbuilder.storage.atomic import write_json
from kbuilder.train.data import Arrays
from kbuilder.use import figures, metrics
from kbuilder.use.source import TrainedModel
from kbuilder.use.sources import evaluation_set

EVALUATION_FILE = "evaluation.json"
CONFUSION_PNG = "confusion_matrix.png"
RELIABILITY_PNG = "reliability.png"
MISTAKES_PNG = "mistakes.png"
SCATTER_PNG = "predicted_vs_true.png"


def predict_outputs(model: Any, x: np.ndarray, batch_size: int) -> np.ndarray:
    return np.asarray(model.predict(x, batch_size=batch_size, verbose=0))


def output_folder(trained: TrainedModel, out: str | Path | None) -> Path:
    folder = trained.path if out is None else Path(out)
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"-o {folder}: a file is there; give a folder for evaluation.json and its figures")
    return folder


def evaluate_trained(
    trained: TrainedModel,
    *,
    whole: bool = False,
    data_dir: str | Path | None = None,
    out: str | Path | None = None,
    top_k: int = 5,
    mistakes: int = 25,
    batch_size: int | None = None,
) -> dict[str, Any]:
    """Evaluate, write evaluation.json and the figures, and return the document."""
    if top_k < 1 or mistakes < 0:
        raise UsageError(f"--top-k must be 1 or more and --mistakes 0 or more, got {top_k} and {mistakes}")
    folder = output_folder(trained, out)
    raw, split, origin = evaluation_set(trained, data_dir=data_dir, whole=whole)
    data = _preprocessed(trained, raw)
    outputs = predict_outputs(trained.model, data.x, batch_size or trained.train_spec.batch_size)
    document: dict[str, Any] = {
        "target": str(trained.path),
        "kind": trained.kind,
        "run_dir": str(trained.spec_run),
        "model_file": str(trained.model_file),
        "members": [str(m) for m in trained.members],
        "data": {"origin": origin, "split": split, "samples": len(raw)},
        "loss_name": trained.loss_name,
    }
    if trained.classification:
        document.update(_classification(trained, raw, data, outputs, top_k=top_k, mistakes=mistakes))
        folder.mkdir(parents=True, exist_ok=True)
        document["files"] = _classification_figures(document, raw, folder)
    else:
        document["task"] = "regression"
        document["metrics"] = metrics.regression(data.y, outputs)
        folder.mkdir(parents=True, exist_ok=True)
        document["files"] = {
            "predicted_vs_true": figures.regression_scatter(
                data.y, outputs, folder / SCATTER_PNG, r2=document["metrics"]["r2"]
            )
        }
    document["files"]["evaluation"] = str(folder / EVALUATION_FILE)
    write_json(folder / EVALUATION_FILE, document)
    return document


def _preprocessed(trained: TrainedModel, raw: Arrays) -> Arrays:
    """The raw samples as the model was fed in training; labels as class ids."""
    x = trained.preprocess(raw.x)
    if not trained.accepts(x):
        raise DataError(
            f"after the run's preprocessing the samples have shape {tuple(x.shape[1:])}, but the model "
            f"expects {tuple(trained.model.inputs[0].shape[1:])}"
        )
    y = raw.y
    if trained.classification and y.ndim == 2 and y.shape[1] > 1:  # one-hot labels back to class ids
        y = np.argmax(y, axis=1)
    return Arrays(x, y)


def _classification(
    trained: TrainedModel, raw: Arrays, data: Arrays, outputs: np.ndarray, *, top_k: int, mistakes: int
) -> dict[str, Any]:
    binary = trained.loss_name == "binary_crossentropy"
    if binary and trained.output_width != 1:
        raise UsageError(
            f"{trained.run_dir}: a binary_crossentropy model with {trained.output_width} outputs is multi-label; "
            "kbuilder evaluate handles one class per sample"
        )
    probs = metrics.exact_rows(trained.class_probabilities(outputs))
    y = np.asarray(data.y).reshape(len(data.y), -1)[:, 0].round().astype("int64") if binary else data.y
    names = trained.labels
    if y.ndim != 1 or (len(y) and (y.min() < 0 or y.max() >= probs.shape[1])):
        raise UsageError(
            f"the labels run from {y.min()} to {y.max()} but the model has {probs.shape[1]} classes"
        )
    figures_ = metrics.classification(y, probs, names, top_k=top_k)
    predicted = probs.argmax(axis=1)
    wrong = metrics.most_confident_mistakes(y, probs, mistakes)
    rows = [
        {
            "index": index,
            "true": int(y[index]),
            "true_name": names[int(y[index])],
            "predicted": int(predicted[index]),
            "predicted_name": names[int(predicted[index])],
            "probability": float(probs[index, predicted[index]]),
        }
        for index in wrong
    ]
    return {"task": "classification", "class_names": names, "metrics": figures_, "mistakes": rows}


def _classification_figures(document: dict[str, Any], raw: Arrays, folder: Path) -> dict[str, str]:
    found = document["metrics"]
    images = raw.x[[row["index"] for row in document["mistakes"]]] if document["mistakes"] else raw.x[:0]
    return {
        "confusion_matrix": figures.confusion_heatmap(
            found["confusion_matrix"], document["class_names"], folder / CONFUSION_PNG
        ),
        "reliability": figures.reliability_diagram(found["calibration"], folder / RELIABILITY_PNG),
        "mistakes": figures.mistakes_grid(images, document["mistakes"], folder / MISTAKES_PNG),
    }
