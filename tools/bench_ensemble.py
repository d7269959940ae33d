"""Ensemble accuracy: N members of one spec with different seeds, against the best and the mean member.

Runs `kbuilder ensemble SPEC --members N` (optionally with --bagging) for each spec in a fresh
process, reads the ensemble's metrics.json and prints, per spec: every member's test accuracy and
loss, the averaging and voting ensembles', and the gain over the best and the mean member.

    python tools/bench_ensemble.py                                        # mnist_mlp, 5 members, the recipe's 10 epochs
    python tools/bench_ensemble.py --specs mnist_mlp lenet5_modern --epochs 3
    python tools/bench_ensemble.py --bagging --json bench_ensemble.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = (REPO / "../shared/datasets").resolve()


def run_spec(
    spec: str, *, members: int, epochs: int | None, bagging: bool, data_dir: Path, out: Path
) -> dict:
    command = [
        sys.executable,
        "-m",
        "kbuilder.cli.app",
        "ensemble",
        spec,
        "--members",
        str(members),
        "--data-dir",
        str(data_dir),
        "--out",
        str(out),
        "--quiet",
        "--format",
        "json",
    ]
    if epochs is not None:
        command += ["--epochs", str(epochs)]
    if bagging:
        command.append("--bagging")
    env = {
        **os.environ,
        "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    started = time.perf_counter()
    finished = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if finished.returncode != 0:
        sys.stderr.write(finished.stdout[-3000:] + finished.stderr[-3000:])
        raise SystemExit(f"kbuilder ensemble {spec} failed with exit code {finished.returncode}")
    metrics = json.loads((out / "metrics.json").read_text())
    metrics["wall_seconds"] = round(seconds, 1)
    return metrics


def markdown(spec: str, metrics: dict, epochs: int | None) -> str:
    lines = [
        (
            f"#### {spec}: {len(metrics['members'])} members, {epochs or 'recipe'} epochs, "
            f"{metrics['test_samples']} test images, {metrics['wall_seconds']} s in all"
        ),
        "",
        "| member | seed | bootstrap | test accuracy | test loss |",
        "|---|---|---|---|---|",
    ]
    for m in metrics["members"]:
        lines.append(
            f"| {m['member']} | {m['seed']} | {m['bootstrap'] if m['bootstrap'] is not None else '-'} | "
            f"{m['test_accuracy']:.2%} | {m['test_loss']:.4f} |"
        )
    for method, figures in metrics["combinations"].items():
        lines.append(
            f"| **ensemble ({method})** | | | **{figures['test_accuracy']:.2%}** | {figures['test_loss']:.4f} |"
        )
    best, mean = metrics["best_member_test_accuracy"], metrics["mean_member_test_accuracy"]
    average = metrics["combinations"]["average"]["test_accuracy"]
    lines += [
        "",
        (
            f"average ensemble {average:.2%} vs best member {best:.2%} ({(average - best) * 100:+.2f} points) "
            f"and mean member {mean:.2%} ({(average - mean) * 100:+.2f} points)"
        ),
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--specs", nargs="+", default=["mnist_mlp"], help="bundled spec names or files")
    parser.add_argument("--members", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=None, help="default: each spec's own recipe")
    parser.add_argument("--bagging", action="store_true")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--keep", type=Path, default=None, help="keep the ensembles in this folder")
    parser.add_argument("--json", type=Path, default=None, help="also write every figure here")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench_ensemble_") as scratch:
        root = args.keep or Path(scratch)
        for spec in args.specs:
            metrics = run_spec(
                spec,
                members=args.members,
                epochs=args.epochs,
                bagging=args.bagging,
                data_dir=args.data_dir,
                out=root / f"{Path(spec).stem}-ensemble",
            )
            results[spec] = metrics
            sys.stdout.write(markdown(spec, metrics, args.epochs) + "\n")
            sys.stdout.flush()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
