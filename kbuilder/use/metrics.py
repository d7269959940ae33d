"""The figures of an evaluation, computed with scikit-learn's metrics from plain arrays.

Classification: loss (cross-entropy), accuracy, top-k accuracy, per-class precision, recall,
F1 and support with their macro and weighted averages, the confusion matrix, and the
expected calibration error of the top-label confidence. Regression: MSE, MAE and R².
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve

CALIBRATION_BINS = 15


def exact_rows(probs: np.ndarray) -> np.ndarray:
    """[N, classes] probabilities whose rows sum to 1: a float32 softmax does only within
    rounding, and scikit-learn's log_loss wants them exact."""
    probs = np.asarray(probs, dtype="float64")
    return probs / np.maximum(probs.sum(axis=1, keepdims=True), 1e-12)


def calibration(correct: np.ndarray, confidence: np.ndarray, bins: int = CALIBRATION_BINS) -> dict[str, Any]:
    """Expected calibration error over `bins` equal-width confidence bins, with the bins'
    accuracy, mean confidence and count (the reliability diagram's bars)."""
    confidence = np.clip(confidence, 0.0, 1.0)
    accuracy, mean_confidence = calibration_curve(correct, confidence, n_bins=bins, strategy="uniform")
    # scikit-learn's binning rule (calibration_curve), to count the samples of its non-empty bins
    edges = np.linspace(0.0, 1.0, bins + 1)
    counts = np.bincount(np.searchsorted(edges[1:-1], confidence), minlength=bins)
    counts = counts[counts > 0]
    ece = float(np.sum(counts * np.abs(accuracy - mean_confidence)) / len(confidence))
    return {
        "expected_calibration_error": ece,
        "bins": bins,
        "bin_accuracy": accuracy.tolist(),
        "bin_confidence": mean_confidence.tolist(),
        "bin_count": counts.tolist(),
    }


def classification(y: np.ndarray, probs: np.ndarray, names: list[str], *, top_k: int) -> dict[str, Any]:
    """Every classification figure of the evaluation (plain lists and floats)."""
    labels = list(range(probs.shape[1]))
    predicted = probs.argmax(axis=1)
    correct = (predicted == y).astype("int64")
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        y, predicted, labels=labels, zero_division=0
    )
    averages = {}
    for average in ("macro", "weighted"):
        p, r, f, _ = skm.precision_recall_fscore_support(
            y, predicted, labels=labels, average=average, zero_division=0
        )
        averages[average] = {
            "precision": float(p),
            "recall": float(r),
            "f1": float(f),
            "support": len(y),
        }
    figures: dict[str, Any] = {
        "loss": float(skm.log_loss(y, probs, labels=labels)),
        "accuracy": float(skm.accuracy_score(y, predicted)),
    }
    if 1 < top_k < len(labels):
        figures[f"top{top_k}_accuracy"] = float(skm.top_k_accuracy_score(y, probs, k=top_k, labels=labels))
    figures["per_class"] = [
        {
            "class": index,
            "name": names[index],
            "precision": float(precision[index]),
            "recall": float(recall[index]),
            "f1": float(f1[index]),
            "support": int(support[index]),
        }
        for index in labels
    ]
    figures["averages"] = averages
    figures["confusion_matrix"] = skm.confusion_matrix(y, predicted, labels=labels).tolist()
    figures["calibration"] = calibration(correct, probs.max(axis=1))
    return figures


def most_confident_mistakes(y: np.ndarray, probs: np.ndarray, count: int) -> list[int]:
    """Indices of the wrong predictions, the most confident first."""
    predicted = probs.argmax(axis=1)
    wrong = np.flatnonzero(predicted != y)
    order = np.argsort(-probs[wrong, predicted[wrong]], kind="stable")
    return wrong[order][:count].tolist()


def regression(y: np.ndarray, predicted: np.ndarray) -> dict[str, Any]:
    truth = np.asarray(y, dtype="float64").reshape(len(y), -1)
    guess = np.asarray(predicted, dtype="float64").reshape(len(predicted), -1)
    return {
        "mse": float(skm.mean_squared_error(truth, guess)),
        "mae": float(skm.mean_absolute_error(truth, guess)),
        "r2": float(skm.r2_score(truth, guess)) if len(truth) > 1 else None,
    }
