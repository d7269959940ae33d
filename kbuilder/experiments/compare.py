"""`kbuilder compare RUN...`: the settings that differ between runs, their final figures, and one
figure of their learning curves overlaid.

Each run's resolved spec.yaml is flattened to the dotted paths `--set` and `search` take
(`layers.2.dense.activation`, `train.optimizer.learning_rate`); only paths whose values differ
between the runs are shown, so two runs of one spec with one `--set` show just that setting.
`search` and `expect` are left out (they change nothing a run trained). Two different
architectures differ in dozens of `layers.*` paths: past a few, those are summarized as each
model's parameters, MACs and layer count (computed from the spec alone), `all_settings` lists
them every one.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kbuilder.errors import KBuilderError, RuntimeFailure, UsageError
from kbuilder.graph import expand
from kbuilder.graph.figures import static_figures
from kbuilder.spec import LoadedSpec, validate_data
from kbuilder.spec.loader import SourceMap, read_yaml
from kbuilder.storage.atomic import save_figure
from kbuilder.storage.run_reader import RunRecord, read_run

# Final figures shown for every run, in this order, when at least one run has them.
METRIC_KEYS = (
    "test_accuracy",
    "test_loss",
    "val_accuracy",
    "val_loss",
    "train_accuracy",
    "train_loss",
    "epochs_run",
    "train_seconds",
)
MISSING = "(absent)"
MAX_RUNS = 50
CURVES = ("loss", "accuracy")
IGNORED = ("search", "expect")  # neither changes what a run trained
ARCHITECTURE = ("inputs", "blocks", "layers", "outputs")  # the model's own sections
SUMMARIZE_OVER = 4  # more differing architecture paths than this are summarized


@dataclass
class Comparison:
    runs: list[RunRecord]
    labels: list[str]
    settings: dict[str, list[Any]]  # dotted path -> value per run (MISSING where a run lacks it)
    metrics: dict[str, list[Any]]  # metric -> value per run (None where a run lacks it)
    # params, MACs and layer count per run (None where the spec alone does not give it), when
    # the architectures differ; `summarized`: the architecture paths shown only through them.
    architecture: dict[str, list[Any]] = field(default_factory=dict)
    summarized: list[str] = field(default_factory=list)


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested mappings and lists as {dotted.path: leaf}; list items by index, empty containers as leaves."""
    items: Iterable[tuple[Any, Any]]
    if isinstance(value, dict) and value:
        items = value.items()
    elif isinstance(value, list) and value:
        items = ((str(i), v) for i, v in enumerate(value))
    else:
        return {prefix: value}
    flat: dict[str, Any] = {}
    for key, child in items:
        flat.update(flatten(child, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def differing_paths(documents: Sequence[Any]) -> list[str]:
    """The dotted paths whose values are not the same in every document, in first-seen order."""
    flats = [flatten(d) for d in documents]
    paths = list(dict.fromkeys(p for flat in flats for p in flat))
    return [p for p in paths if len({_key(flat.get(p, MISSING)) for flat in flats}) > 1]


def _key(value: Any) -> str:
    return repr(value)  # 1 and 1.0 and True stay distinct, as the spec would treat them


def run_labels(paths: Sequence[Path]) -> list[str]:
    """Directory names, or the paths as given when two runs share a name."""
    names = [p.name or str(p) for p in paths]
    return names if len(set(names)) == len(names) else [str(p) for p in paths]


def architecture_figures(spec: Any, where: str) -> dict[str, int | None]:
    """A run's parameters, MACs per sample and layer count from its spec alone (no Keras);
    None where its spec does not give them (a shape known only once built)."""
    try:
        data = copy.deepcopy({k: v for k, v in spec.items() if k not in IGNORED})
        source = SourceMap(where)
        graph = expand(LoadedSpec(validate_data(data, source), data, source))
        figures = static_figures(graph)
    except (KBuilderError, AttributeError):
        return {"params": None, "MACs": None, "layers": None}
    params = [f.params.total if f.params is not None else None for f in figures.values()]
    macs = [f.macs for f in figures.values()]
    return {
        "params": None if None in params else sum(p or 0 for p in params),
        "MACs": None if None in macs else sum(m or 0 for m in macs),
        "layers": sum(node.kind != "input" for node in graph.nodes),
    }


def _architectural(path: str) -> bool:
    return path.split(".", 1)[0] in ARCHITECTURE


def compare_runs(run_dirs: Sequence[str | Path], all_settings: bool = False) -> Comparison:
    """The runs side by side; `all_settings`: every differing path, architecture ones included."""
    if len(run_dirs) < 2:
        raise UsageError(f"give at least 2 run directories to compare, got {len(run_dirs)}")
    if len(run_dirs) > MAX_RUNS:
        raise UsageError(f"{len(run_dirs)} runs; compare at most {MAX_RUNS} at once")
    runs = [read_run(path, read_yaml) for path in run_dirs]
    if not any(run.finished or run.history for run in runs):
        raise UsageError("none of the runs has finished an epoch yet: nothing to compare")
    specs = [{k: v for k, v in run.spec.items() if k not in IGNORED} for run in runs]
    differing = differing_paths(specs)
    flats = [flatten(spec) for spec in specs]
    model_paths = [p for p in differing if _architectural(p)]
    summarized = [] if all_settings or len(model_paths) <= SUMMARIZE_OVER else model_paths
    settings = {
        path: [flat.get(path, MISSING) for flat in flats] for path in differing if path not in summarized
    }
    architecture: dict[str, list[Any]] = {}
    if model_paths:
        per_run = [architecture_figures(run.spec, str(run.path / "spec.yaml")) for run in runs]
        architecture = {key: [f[key] for f in per_run] for key in per_run[0]}
        if not summarized:  # only the figures that differ say something beside the settings
            architecture = {k: v for k, v in architecture.items() if len({repr(x) for x in v}) > 1}
    metrics = {
        key: [(run.metrics or {}).get(key) for run in runs]
        for key in METRIC_KEYS
        if any((run.metrics or {}).get(key) is not None for run in runs)
    }
    return Comparison(
        runs, run_labels([run.path for run in runs]), settings, metrics, architecture, summarized
    )


def as_json(comparison: Comparison, figure: str | None) -> dict[str, Any]:
    return {
        "ok": True,
        "runs": [
            {
                "label": label,
                "run_dir": str(run.path),
                "finished": run.finished,
                "settings": {path: values[i] for path, values in comparison.settings.items()},
                "architecture": {key: values[i] for key, values in comparison.architecture.items()},
                "metrics": {key: values[i] for key, values in comparison.metrics.items()},
                "epochs_recorded": len(run.history),
            }
            for i, (label, run) in enumerate(zip(comparison.labels, comparison.runs))
        ],
        "differing_settings": list(comparison.settings),
        "summarized_settings": comparison.summarized,
        "figure": figure,
    }


def table_rows(comparison: Comparison, human: bool = True) -> tuple[list[str], list[list[Any]]]:
    """One row per run: its label, the differing settings, the architecture's figures, the final figures."""
    headers = ["run", *comparison.settings, *comparison.architecture, *comparison.metrics]
    rows = []
    for index, (label, run) in enumerate(zip(comparison.labels, comparison.runs)):
        row: list[Any] = [label if run.finished else f"{label} (unfinished)"]
        row += [_setting_text(values[index]) for values in comparison.settings.values()]
        row += [
            _count(values[index]) if human else values[index] for values in comparison.architecture.values()
        ]
        row += [values[index] for values in comparison.metrics.values()]
        rows.append(row)
    return headers, rows


def notes(comparison: Comparison) -> list[str]:
    """What the table leaves out, said below it."""
    if not comparison.settings and not comparison.architecture:
        return ["the runs' resolved specs are identical (search and expect aside)"]
    if not comparison.summarized:
        return []
    sections = sorted({p.split(".", 1)[0] for p in comparison.summarized})
    return [
        (
            f"architecture differs in {len(comparison.summarized)} settings ({', '.join(sections)}): "
            "shown as params, MACs and layers; --all lists every one"
        )
    ]


def _count(value: Any) -> Any:
    """Large counts in human units (3.86 G) in the table; JSON and CSV keep the integers."""
    if not isinstance(value, int) or abs(value) < 10_000:
        return "?" if value is None else value
    for size, unit in ((10**9, "G"), (10**6, "M"), (10**3, "k")):
        if abs(value) >= size:
            return f"{value / size:.3g} {unit}"
    return value


def _setting_text(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        return "{}" if isinstance(value, dict) else "[]"
    return "null" if value is None else value


def plot_curves(comparison: Comparison, path: str | Path) -> Path:
    """Loss and accuracy per epoch of every run, one colour per run, train solid, validation dashed."""
    # matplotlib loads only when a figure is asked for (it costs a second), and must be told to
    # draw into files (Agg) before pyplot is imported.
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on servers and CI
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    histories = [run.history for run in comparison.runs]
    panels = [
        name
        for name in CURVES
        if any(name in row or f"val_{name}" in row for rows in histories for row in rows)
    ]
    if not panels:
        raise UsageError("the runs have no per-epoch history (history.json or history.csv) to plot")
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.5), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, name in zip(axes[0], panels):
        for index, (label, rows) in enumerate(zip(comparison.labels, histories)):
            colour = colours[index % len(colours)]
            epochs = [row.get("epoch") for row in rows]
            for key, style, suffix in ((name, "-", "train"), (f"val_{name}", "--", "validation")):
                values = [_number(row.get(key)) for row in rows]
                if not all(math.isnan(v) for v in values):  # at least one real value
                    ax.plot(
                        epochs,
                        values,
                        style,
                        color=colour,
                        marker="o",
                        markersize=3,
                        label=f"{label} {suffix}",
                    )
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(name)
        ax.set_title(f"{name} (solid: train, dashed: validation)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    fig.tight_layout()
    try:
        return _save(fig, Path(path))
    finally:
        plt.close(fig)


def _number(value: Any) -> float:
    """A figure to plot; NaN (a gap in the line) where a row lacks it."""
    return value if isinstance(value, (int, float)) else math.nan


def check_figure_target(path: str | Path) -> Path:
    """Refuse a figure name that cannot be written, before any run is read (as `diagram` does):
    no folder is ever created for it."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise UsageError(f"-o {path}: the figure is written as PNG; give a file name ending in .png")
    if path.is_dir():
        raise UsageError(f"-o {path} is a directory; give a file name ending in .png")
    if not path.parent.is_dir():
        raise UsageError(f"cannot write '{path}': the folder '{path.parent}' does not exist")
    return path


def _save(fig: Any, path: Path) -> Path:
    """Written beside the target and renamed, so a failed write never leaves half a PNG."""
    check_figure_target(path)
    try:
        save_figure(path, fig, dpi=110)
    except OSError as exc:
        raise RuntimeFailure(f"cannot write the figure {path}: {exc}") from None
    return path
