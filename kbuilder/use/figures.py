"""The evaluation's PNG figures: confusion matrix, reliability diagram, confident mistakes,
predicted-against-true scatter. Each is written atomically (kbuilder.storage.atomic)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and CI
import matplotlib.pyplot as plt
import numpy as np

from kbuilder.storage.atomic import save_figure

DPI = 100


def save(figure: Any, path: Path) -> str:
    try:
        save_figure(path, figure, format="png", dpi=DPI, bbox_inches="tight")
    finally:
        plt.close(figure)
    return str(path)


def displayable(image: np.ndarray) -> tuple[np.ndarray, str | None]:
    """An image as matplotlib shows it: grayscale squeezed (with a gray colour map), colour
    scaled into [0, 1]."""
    image = np.asarray(image, dtype="float64")
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim == 2:
        return image, "gray"
    low, high = float(image.min()), float(image.max())
    return (image - low) / (high - low or 1.0), None


def confusion_heatmap(matrix: list[list[int]], names: list[str], path: Path) -> str:
    counts = np.asarray(matrix)
    size = max(5.0, 0.45 * len(names) + 2.5)
    figure, ax = plt.subplots(figsize=(size, size * 0.85))
    shown = ax.imshow(counts, cmap="Blues")
    figure.colorbar(shown, ax=ax, fraction=0.046, pad=0.04)
    ticks = np.arange(len(names))
    ax.set_xticks(ticks, names, rotation=45 if max(map(len, names)) > 2 else 0, ha="right")
    ax.set_yticks(ticks, names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    if len(names) <= 20:  # counts in the cells while they stay legible
        threshold = counts.max() / 2 if counts.size else 0
        for (row, col), value in np.ndenumerate(counts):
            colour = "white" if value > threshold else "black"
            ax.text(col, row, str(value), ha="center", va="center", fontsize=7, color=colour)
    ax.set_title("confusion matrix")
    return save(figure, path)


def reliability_diagram(calibration: dict[str, Any], path: Path) -> str:
    bins = calibration["bins"]
    width = 1.0 / bins
    figure, ax = plt.subplots(figsize=(5, 5))
    confidence = np.asarray(calibration["bin_confidence"])
    accuracy = np.asarray(calibration["bin_accuracy"])
    left = np.floor(np.clip(confidence, 0, 1 - 1e-9) * bins) * width
    ax.bar(left, accuracy, width=width, align="edge", edgecolor="black", label="accuracy")
    ax.bar(
        left,
        confidence - accuracy,
        bottom=accuracy,
        width=width,
        align="edge",
        color="red",
        alpha=0.3,
        label="gap to confidence",
    )
    ax.plot([0, 1], [0, 1], "k--", linewidth=1, label="perfect calibration")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence (top-class probability)")
    ax.set_ylabel("accuracy")
    ax.set_title(f"reliability: ECE = {calibration['expected_calibration_error']:.4f}")
    ax.legend(loc="upper left")
    return save(figure, path)


def mistakes_grid(images: np.ndarray, rows: list[dict[str, Any]], path: Path) -> str:
    """One tile per mistake: the image, its true and predicted class and the probability."""
    count = max(1, len(rows))
    columns = min(5, count)
    lines = math.ceil(count / columns)
    figure, axes = plt.subplots(lines, columns, figsize=(2.3 * columns, 2.6 * lines), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, row in zip(axes.flat, images, rows):
        shown, cmap = displayable(image)
        ax.imshow(shown, cmap=cmap)
        ax.set_title(
            f"true {row['true_name']}\npred {row['predicted_name']} ({row['probability']:.3f})", fontsize=8
        )
    if not rows:
        axes.flat[0].text(0.5, 0.5, "no mistakes", ha="center", va="center")
    figure.suptitle("most confident mistakes")
    figure.tight_layout()
    return save(figure, path)


def regression_scatter(truth: np.ndarray, predicted: np.ndarray, path: Path, *, r2: float | None) -> str:
    truth = np.asarray(truth, dtype="float64").ravel()
    predicted = np.asarray(predicted, dtype="float64").ravel()
    figure, ax = plt.subplots(figsize=(5, 5))
    ax.scatter(truth, predicted, s=6, alpha=0.5)
    low = float(min(truth.min(), predicted.min())) if truth.size else 0.0
    high = float(max(truth.max(), predicted.max())) if truth.size else 1.0
    ax.plot([low, high], [low, high], "k--", linewidth=1, label="predicted = true")
    ax.set_xlabel("true value")
    ax.set_ylabel("predicted value")
    ax.set_title("predicted against true" + (f" (R² = {r2:.4f})" if r2 is not None else ""))
    ax.legend(loc="upper left")
    return save(figure, path)
