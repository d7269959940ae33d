"""What a `kbuilder tune` trial costs against a plain `kbuilder train` of the same configuration.

    python tools/bench_tune.py --data-dir ../shared/datasets --trials 20 --epochs 2 --workers 2

1. `kbuilder tune specs/mnist_mlp.yaml` with a random search (no pruning, so every trial trains
   all its epochs) over the spec's search space, `--workers` processes, SQLite storage;
2. the same configurations, one after the other, each as its own `kbuilder train --no-export`
   process (what a user would run by hand: a process start, imports and data loading per run).
Reported: both wall-clock times, and per trial/run the seconds spent outside `model.fit`
(train_seconds in metrics.json): the overhead a trial adds to its training.
Figures go to stdout as a Markdown table and, with --json FILE, to a JSON file.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def kbuilder(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-m", "kbuilder.cli.app", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(
            f"kbuilder {' '.join(args)} failed ({result.returncode}):\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
        )
    return result


def bracketed(key: str) -> str:
    """`--set` indexes lists with brackets: layers.1.dense.units -> layers[1].dense.units."""
    return re.sub(r"[.](\d+)(?=[.]|$)", r"[\1]", key)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default=str(REPO / "specs" / "mnist_mlp.yaml"))
    parser.add_argument("--data-dir", default=os.environ.get("KBUILDER_DATA_DIR"))
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--limit", type=int, default=None, help="Train on the first N images only (train.data.limit)."
    )
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--skip-plain", action="store_true", help="Only the tune half (compare with an earlier plain run)."
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-tune-"))
    common = [f"train.epochs={args.epochs}"] + ([f"train.data.limit={args.limit}"] if args.limit else [])
    sets = [
        x
        for item in common + ["search.sampler=random", "search.pruner=none", "search.baseline=false"]
        for x in ("--set", item)
    ]
    data = ["--data-dir", args.data_dir] if args.data_dir else []
    try:
        started = time.perf_counter()
        kbuilder(
            "tune",
            args.spec,
            *sets,
            *data,
            "--trials",
            str(args.trials),
            "--workers",
            str(args.workers),
            "--out",
            str(work / "study"),
            "--quiet",
            "-f",
            "json",
            cwd=work,
        )
        tune_wall = time.perf_counter() - started
        summary = json.loads((work / "study" / "summary.json").read_text())
        trials = [row for row in summary["trials"] if row["state"] == "complete"]
        space = [key for key in trials[0] if key.startswith(("train.", "layers", "params."))]
        tune_costs = []
        for row in trials:
            metrics = json.loads((Path(row["run_dir"]) / "metrics.json").read_text())
            tune_costs.append((row["seconds"], metrics["train_seconds"]))
        plain_costs = []
        started = time.perf_counter()
        for index, row in enumerate([] if args.skip_plain else trials):
            values = [x for key in space for x in ("--set", f"{bracketed(key)}={row[key]}")]
            run_start = time.perf_counter()
            kbuilder(
                "train",
                args.spec,
                *[x for item in common for x in ("--set", item)],
                "--set",
                "train.data.validation={type: split, fraction: 0.1}",
                *values,
                *data,
                "--no-export",
                "--quiet",
                "--json",
                "--out",
                str(work / f"plain-{index}"),
                cwd=work,
            )
            metrics = json.loads((work / f"plain-{index}" / "metrics.json").read_text())
            plain_costs.append((time.perf_counter() - run_start, metrics["train_seconds"]))
        plain_wall = time.perf_counter() - started
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def mean(values):
        values = list(values)
        return round(statistics.mean(values), 2) if values else None

    figures = {
        "trials": len(trials),
        "epochs": args.epochs,
        "workers": args.workers,
        "limit": args.limit,
        "tune_wall_seconds": round(tune_wall, 1),
        "plain_wall_seconds": round(plain_wall, 1) if plain_costs else None,
        "speedup": round(plain_wall / tune_wall, 2) if plain_costs else None,
        "tune_seconds_per_trial": mean(t for t, _ in tune_costs),
        "plain_seconds_per_run": mean(t for t, _ in plain_costs),
        "tune_fit_seconds_per_trial": mean(f for _, f in tune_costs),
        "plain_fit_seconds_per_run": mean(f for _, f in plain_costs),
        "tune_overhead_per_trial": mean(total - fit for total, fit in tune_costs),
        "plain_overhead_per_run": mean(total - fit for total, fit in plain_costs),
        "load_average": os.getloadavg(),
    }
    print("| figure | value |\n|---|---|")
    for key, value in figures.items():
        print(f"| {key} | {value} |")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
