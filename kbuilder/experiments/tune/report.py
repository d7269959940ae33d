"""What a study found: the trials table, the best spec as a YAML file, plots, a summary.

Written into the study folder (each file whole or not at all):
    trials.csv        one row per trial, best first
    summary.json      the study, its counts, the best trial and where everything is
    best.yaml         the best trial's spec, without `search`: `kbuilder train best.yaml` takes it as is
    plots/*.png       history, slice and importance, named after the metric (plots.py)
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from kbuilder.experiments.tune.best import BEST_SPEC, REPORT_MODE, write_best_spec
from kbuilder.experiments.tune.plots import write_plots
from kbuilder.experiments.tune.study import count_trials
from kbuilder.spec.search import SearchSpec
from kbuilder.storage import atomic

PLOTS_DIR = "plots"


def short(value: Any) -> str:
    if value is True:
        return "yes"
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def _seconds(trial) -> float | None:
    if trial.datetime_start and trial.datetime_complete:
        return round((trial.datetime_complete - trial.datetime_start).total_seconds(), 1)
    return None


def state_of(trial) -> str:
    name = trial.state.name.lower()
    if name == "fail" and "error" not in trial.user_attrs:
        return "interrupted"  # its worker died or was stopped; the study retries its values
    return name


def trial_line(trial, search) -> str:
    """`trial 3 complete val_accuracy=0.9712 lr=0.0123 width=256 (12.3 s)` for progress output."""
    values = " ".join(f"{key}={short(v)}" for key, v in trial.params.items())
    state = state_of(trial)
    figure = f" {search.metric}={short(trial.value)}" if trial.value is not None else ""
    if state == "pruned":
        figure = f" pruned after epoch {trial.user_attrs.get('pruned_at_epoch', '?')}"
    error = f": {trial.user_attrs['error']}" if "error" in trial.user_attrs else ""
    seconds = _seconds(trial)
    if trial.user_attrs.get("round") is not None:  # coarse_to_fine: which round, in which intervals
        values += f" [round {trial.user_attrs['round']}: {_intervals(trial.user_attrs.get('intervals'))}]"
    return f"trial {trial.number} {state}{figure} {values}{f' ({seconds} s)' if seconds is not None else ''}{error}"


def _intervals(intervals: dict | None) -> str:
    if not intervals:
        return "the whole space"
    return ", ".join(f"{k} in [{', '.join(short(v) for v in vals)}]" for k, vals in intervals.items())


def trial_rows(study, search) -> list[dict[str, Any]]:
    """One row per trial (surplus ones left out), best first; pruned, then failed ones after."""
    rows = []
    for trial in study.get_trials(deepcopy=False):
        if trial.user_attrs.get("surplus"):
            continue
        figures = trial.user_attrs.get("figures") or {}
        rows.append(
            {
                "trial": trial.number,
                "state": state_of(trial),
                search.metric: trial.value,
                **{key: trial.params.get(key) for key in search.space},
                **{k: v for k, v in figures.items() if k != search.metric},
                "baseline": True if trial.user_attrs.get("baseline") else None,
                "round": trial.user_attrs.get("round"),
                "seconds": _seconds(trial),
                "retry_of": trial.user_attrs.get("retry_of", trial.system_attrs.get("failed_trial")),
                "run_dir": trial.user_attrs.get("run_dir"),
                "host": trial.user_attrs.get("host"),
                "error": trial.user_attrs.get("error"),
            }
        )
    sign = -1.0 if search.goal() == "maximize" else 1.0
    order = {"complete": 0, "pruned": 1, "running": 2, "waiting": 2, "fail": 3, "interrupted": 4}
    return sorted(
        rows,
        key=lambda r: (
            order.get(r["state"], 5),
            sign * r[search.metric] if r[search.metric] is not None else 0,
            r["trial"],
        ),
    )


def table_columns(rows: list[dict], search) -> list[str]:
    columns = ["trial", "state", search.metric, *search.space]
    for extra in ("test_accuracy", "test_loss", "val_loss", "epochs_run", "baseline", "round", "seconds"):
        if extra != search.metric and any(r.get(extra) is not None for r in rows):
            columns.append(extra)
    return columns


def render_table(rows: list[dict], search, fmt: str) -> str:
    columns = table_columns(rows, search)
    cells = [[short(row.get(c)) for c in columns] for row in rows]
    if fmt == "markdown":
        lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        return "\n".join(lines + ["| " + " | ".join(c) + " |" for c in cells]) + "\n"
    if fmt == "csv":
        buffer = io.StringIO()
        csv.writer(buffer).writerows([columns, *cells])
        return buffer.getvalue()
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, h in enumerate(columns)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(columns, widths))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in cells]
    failures = [f"trial {r['trial']}: {r['error']}" for r in rows if r.get("error")]
    return "\n".join(lines + failures) + "\n"


def best_trial(study: optuna.Study) -> FrozenTrial | None:
    complete = [
        t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.value is not None
    ]
    return study.best_trial if complete else None


def write_report(
    study: optuna.Study, search: SearchSpec, study_dir: Path, storage_shown: str
) -> dict[str, Any]:
    """Write trials.csv, best.yaml, plots and summary.json; return the summary."""
    study_dir.mkdir(parents=True, exist_ok=True)
    rows = trial_rows(study, search)
    atomic.write_text(study_dir / "trials.csv", render_table(rows, search, "csv"), mode=REPORT_MODE)
    counts = count_trials(study)
    best = best_trial(study)
    summary: dict[str, Any] = {
        "study": study.study_name,
        "storage": storage_shown,
        "study_dir": str(study_dir),
        "metric": search.metric,
        "direction": search.goal(),
        "sampler": search.sampler,
        "pruner": search.pruner,
        "target": study.user_attrs.get("target"),
        "counted": counts.done,
        "complete": counts.complete,
        "pruned": counts.pruned,
        "failed": counts.failed,
        "running": counts.running,
        "best": None,
        "best_spec": None,
    }
    if best is not None:
        summary["best"] = next(r for r in rows if r["trial"] == best.number)
        summary["best_spec"] = str(write_best_spec(study, best, study_dir / BEST_SPEC))
    summary["plots"] = write_plots(study, study_dir / PLOTS_DIR, search.metric)
    summary["trials"] = rows
    atomic.write_json(study_dir / "summary.json", summary)
    return summary
