"""Measure kill -9 and resume on a full training (issue 10): test accuracy resumed vs uninterrupted.

    python tools/kill_resume.py --data-dir ../shared/datasets [--spec specs/mnist_mlp.yaml] [--kill-after 4]

Trains SPEC once without interruption, then again with the same command into another run
directory: SIGKILL half-way through the epoch after `--kill-after` epochs, then the same
command once more, which resumes. Prints both runs' test figures and per-epoch losses.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def command(spec: str, out: Path, data_dir: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "kbuilder.cli.app",
        "train",
        spec,
        "--data-dir",
        data_dir,
        "--out",
        str(out),
        "--no-export",
        "--json",
    ]


def rows(out: Path) -> list[dict]:
    try:
        return json.loads((out / "history.json").read_text())
    except (OSError, ValueError):
        return []


def run(cmd: list[str], env: dict) -> dict:
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default=str(REPO / "specs" / "mnist_mlp.yaml"))
    parser.add_argument("--data-dir", default=str((REPO / ".." / "shared" / "datasets").resolve()))
    parser.add_argument("--kill-after", type=int, default=4, help="epochs to finish before the kill")
    parser.add_argument(
        "--work", default=None, help="folder for the two run directories (default: a temporary one)"
    )
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="kill_resume-"))
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}

    started = time.perf_counter()
    straight = run(command(args.spec, work / "straight", args.data_dir), env)
    straight_s = time.perf_counter() - started

    out = work / "killed"
    victim = subprocess.Popen(
        command(args.spec, out, args.data_dir), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    while len(rows(out)) < args.kill_after:
        if victim.poll() is not None:
            sys.exit(f"the run ended (exit {victim.returncode}) before {args.kill_after} epochs")
        time.sleep(0.01)
    pause = rows(out)[-1]["seconds"] / 2
    time.sleep(pause)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    saved = json.loads((out / "backup" / "training_metadata.json").read_text())["epoch"]
    finished_rows = len(rows(out))
    resumed = run(command(args.spec, out, args.data_dir), env)

    history_a, history_b = rows(work / "straight"), rows(out)
    worst = max(abs(b["loss"] - a["loss"]) / abs(a["loss"]) for a, b in zip(history_a, history_b))
    print(f"spec: {args.spec}   run directories: {work}")
    print(
        f"uninterrupted: test_accuracy={straight['test_accuracy']:.4f} test_loss={straight['test_loss']:.4f} "
        f"({straight['epochs_run']} epochs, {straight_s:.0f} s)"
    )
    print(
        f"killed {pause:.2f} s into epoch {finished_rows + 1} (exit {victim.returncode}); backup after epoch {saved}"
    )
    print(
        f"resumed:       test_accuracy={resumed['test_accuracy']:.4f} test_loss={resumed['test_loss']:.4f} "
        f"(resumed after epoch {resumed['resumed_after_epoch']}, trained {len(resumed['epoch_seconds'])} more epochs)"
    )
    print(
        f"difference:    test_accuracy {resumed['test_accuracy'] - straight['test_accuracy']:+.4f}; "
        f"largest relative difference of an epoch's training loss {worst:.2e}"
    )
    print(f"epochs in the resumed history: {[r['epoch'] for r in history_b]}")


if __name__ == "__main__":
    main()
