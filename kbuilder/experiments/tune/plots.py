"""The study's plots (Optuna's matplotlib ones) as PNG files, readable at a glance.

    history.png      the metric of each trial and the best so far
    slice.png        the metric against each searched value
    importance.png   each searched value's importance (Optuna's fANOVA)

The axes are named after the metric (`val_accuracy`), not Optuna's "Objective Value". One
diverged trial (0.109 among values of 0.94-0.95) would squeeze every other point into a line:
the metric's axis keeps a robust range (the quartiles widened by three interquartile ranges),
and a point outside it is drawn on the axis's edge as a red triangle pointing off the scale,
with its value written beside it.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from kbuilder.storage import atomic

REPORT_MODE = 0o644  # a report is for everyone who can read the study folder
IQR_REACH = 3.0  # how many interquartile ranges past the quartiles still count as in range
MIN_POINTS = 4  # fewer values than this: every one is shown as it is


def robust_range(values: list[float]) -> tuple[float, float] | None:
    """(low, high) that leaves out the outliers of `values`; None when none is an outlier."""
    finite = np.array([v for v in values if math.isfinite(v)])
    if len(finite) < MIN_POINTS:
        return None
    q1, q3 = np.percentile(finite, [25, 75])
    reach = IQR_REACH * max(q3 - q1, 1e-12 + 1e-3 * abs(q3))
    low, high = max(finite.min(), q1 - reach), min(finite.max(), q3 + reach)
    if low <= finite.min() and high >= finite.max():
        return None
    pad = 0.08 * (high - low or abs(high) or 1.0)
    return float(low - pad), float(high + pad)


def clip_outliers(ax: Any, limits: tuple[float, float]) -> int:
    """Set the y range and mark each point outside it on the edge; returns how many."""
    low, high = limits
    marked = 0
    for collection in list(ax.collections):
        offsets = np.asarray(collection.get_offsets())
        if offsets.ndim != 2 or not len(offsets):
            continue
        for x, y in offsets:
            if y < low or y > high:
                edge = low if y < low else high
                ax.scatter(
                    [x], [edge], marker="v" if y < low else "^", color="red", s=60, zorder=5, clip_on=False
                )
                ax.annotate(
                    f"{y:.4g}", (x, edge), textcoords="offset points", xytext=(6, 0), color="red", fontsize=8
                )
                marked += 1
    ax.set_ylim(low, high)
    return marked


def draw(study: optuna.Study, name: str, metric: str) -> Any:
    """One of the plots as a matplotlib figure, its metric axis named and kept in range."""
    # Optuna's matplotlib plots load matplotlib (a second or more): only when plots are drawn.
    from optuna.visualization import matplotlib as ovm

    plot: Any = {
        "history": ovm.plot_optimization_history,
        "slice": ovm.plot_slice,
        "importance": ovm.plot_param_importances,
    }[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna marks its matplotlib plots experimental
        axes = plot(study, target_name=metric)
    flat = list(axes.flat) if hasattr(axes, "flat") else [axes]
    if name == "importance":
        flat[0].set_xlabel(f"importance for {metric}")
    else:
        values = [t.value for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
        limits = robust_range([v for v in values if v is not None])
        if limits is not None:
            marked = sum(clip_outliers(ax, limits) for ax in flat)
            flat[0].set_title(
                f"{flat[0].get_title()} ({marked} outlier{'s' if marked != 1 else ''} off the scale, in red)"
                if name == "history"
                else flat[0].get_title()
            )
    figure = flat[0].figure
    figure.set_size_inches(max(6.4, 4.0 * len(flat)), 4.8)
    return figure


def write_plots(study: optuna.Study, folder: Path, metric: str) -> dict[str, str]:
    """PNG files of the plots; a plot that cannot be drawn says why."""
    # matplotlib must be told to draw into files (Agg) before pyplot is imported; it loads
    # only when plots are drawn.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    made: dict[str, str] = {}
    for name in ("history", "slice", "importance"):
        try:
            figure = draw(study, name, metric)
            path = folder / f"{name}.png"
            try:
                atomic.save_figure(path, figure, mode=REPORT_MODE, format="png", dpi=100, bbox_inches="tight")
            finally:
                plt.close(figure)
            made[name] = str(path)
        except Exception as exc:  # noqa: BLE001  (e.g. importances need two finished trials)
            made[name] = (
                f"skipped: {type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
            )
    return made
