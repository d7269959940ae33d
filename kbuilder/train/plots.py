"""curves.png: loss and accuracy per epoch, training against validation; a phased run's
phase boundaries as dashed lines with the phases' names."""

from __future__ import annotations

import itertools
from pathlib import Path

from kbuilder.storage.atomic import save_figure


def plot_curves(rows: list[dict], path: Path, *, title: str) -> Path | None:
    """One panel per figure (loss, then accuracy when logged); None when there is nothing to plot."""
    if not rows:
        return None
    # matplotlib loads only when curves are drawn (a second), told to draw into files first.
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on servers and CI
    import matplotlib.pyplot as plt

    figures = ["loss"] + [m for m in ("accuracy",) if any(m in r for r in rows)]
    fig, axes = plt.subplots(1, len(figures), figsize=(5.5 * len(figures), 4), squeeze=False)
    epochs = [r["epoch"] for r in rows]
    for ax, name in zip(axes[0], figures):
        for key, label, style in ((name, "train", "-o"), (f"val_{name}", "validation", "-s")):
            values = [r.get(key) for r in rows]
            if any(isinstance(v, (int, float)) for v in values):
                ax.plot(
                    epochs,
                    [v if isinstance(v, (int, float)) else float("nan") for v in values],
                    style,
                    label=label,
                    markersize=3,
                )
        _mark_phases(ax, rows)
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.set_title(name)
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    try:
        save_figure(Path(path), fig, dpi=110, format="png")
    finally:
        plt.close(fig)
    return path


def _mark_phases(ax, rows: list[dict]) -> None:
    """A dashed line before the first epoch of every phase but the first, named."""
    for before, row in itertools.pairwise(rows):
        if row.get("phase") is not None and row.get("phase") != before.get("phase"):
            ax.axvline(row["epoch"] - 0.5, color="0.4", linestyle="--", linewidth=1)
            ax.annotate(
                str(row["phase"]),
                (row["epoch"] - 0.5, 1.0),
                xycoords=("data", "axes fraction"),
                xytext=(3, -12),
                textcoords="offset points",
                fontsize=8,
                color="0.3",
            )
