"""curves.png: loss and accuracy per epoch, training against validation."""

from __future__ import annotations

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
