"""Samples per second against the batch size, for inference and for a training step, and the
fraction of the machine's peak each reaches (kbuilder.train.peak)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras

from kbuilder.profile import calls
from kbuilder.profile.layers import random_inputs
from kbuilder.storage.atomic import save_figure
from kbuilder.train.peak import Peak


@dataclass
class Throughput:
    batch_size: int
    inference_s: float  # one forward pass of the batch
    training_s: float  # one training step: forward, backward, the optimizer's update

    def as_json(self, macs: int, peak: Peak) -> dict[str, Any]:
        inference, training = self.batch_size / self.inference_s, self.batch_size / self.training_s
        return {
            "batch_size": self.batch_size,
            "inference_ms": round(self.inference_s * 1e3, 4),
            "inference_samples_per_s": round(inference, 1),
            "inference_fraction_of_peak": float(f"{2 * macs * inference / peak.flop_per_s:.4g}"),
            "training_step_ms": round(self.training_s * 1e3, 4),
            "training_samples_per_s": round(training, 1),
            "training_fraction_of_peak": float(f"{6 * macs * training / peak.flop_per_s:.4g}"),
        }


def measure_throughput(
    built: Any, batch_sizes: Sequence[int], new_optimizer: Callable[[], Any], *, repeats: int = 10
) -> list[Throughput]:
    """Time the whole model's forward pass and training step at each batch size (in the same
    rounds, kbuilder.profile.calls.interleaved_best)."""
    model, graph = built.model, built.graph
    layers = {layer.name: layer for layer in model.layers}
    sources = [layers[name].output for name in graph.inputs]
    whole = keras.Model(sources, model.outputs)
    timed: list[calls.Call] = []
    for size in batch_sizes:
        inputs = random_inputs(sources, size)
        timed += [calls.forward(whole, inputs), calls.training_step(whole, inputs, new_optimizer())]
    best = calls.interleaved_best(timed, repeats=repeats, budget_s=10.0)
    return [Throughput(size, best[2 * i], best[2 * i + 1]) for i, size in enumerate(batch_sizes)]


def plot_throughput(rows: list[dict[str, Any]], path: Path, *, title: str) -> Path:
    """Samples per second against the batch size (log-scaled), inference and training, with
    the fraction of the peak at each point; written atomically."""
    # matplotlib loads only when a plot is asked for, told to draw into files first.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    sizes = [row["batch_size"] for row in rows]
    for key, label, style in (("inference", "inference", "-o"), ("training", "training step", "-s")):
        rates = [row[f"{key}_samples_per_s"] for row in rows]
        ax.plot(sizes, rates, style, label=label, markersize=4)
        for size, rate, row in zip(sizes, rates, rows):
            ax.annotate(
                f"{100 * row[f'{key}_fraction_of_peak']:.0f}%",
                (size, rate),
                textcoords="offset points",
                xytext=(0, 6),
                ha="center",
                fontsize=7,
            )
    if len(set(sizes)) > 1:
        ax.set_xscale("log", base=2)
    ax.set_xticks(sizes, [str(size) for size in sizes])
    ax.minorticks_off()
    ax.set_xlabel("batch size")
    ax.set_ylabel("samples per second")
    ax.set_title(f"{title} (labels: % of the machine's peak)", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    try:
        save_figure(Path(path), fig, dpi=110, format="png")
    finally:
        plt.close(fig)
    return Path(path)
