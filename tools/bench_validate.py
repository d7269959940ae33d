"""How fast `kbuilder validate` answers, against baselines measured in the same run.

Runs each command several times in fresh processes and prints the median wall time and
its ratio to (a) a bare Python start and (b) `import keras` (what a validator that builds
models would pay before doing anything). Target: validate well under a second, i.e. a
small fraction of the Keras import.

    python tools/bench_validate.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def timed(argv: list[str], repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True, cwd=REPO)
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    py = sys.executable
    specs = sorted(str(p) for p in (REPO / "specs").glob("*.yaml"))
    cases = {
        "python -c pass (baseline)": [py, "-c", "pass"],
        "import keras (baseline)": [py, "-c", "import keras"],
        "kbuilder validate mnist_mlp": [
            py,
            "-m",
            "kbuilder.cli.app",
            "validate",
            str(REPO / "specs/mnist_mlp.yaml"),
        ],
        "kbuilder validate resnet50": [
            py,
            "-m",
            "kbuilder.cli.app",
            "validate",
            str(REPO / "specs/resnet50.yaml"),
        ],
        f"kbuilder validate all {len(specs)} specs": [py, "-m", "kbuilder.cli.app", "validate", *specs],
    }
    results = {name: timed(argv, args.repeat) for name, argv in cases.items()}
    python, keras = results["python -c pass (baseline)"], results["import keras (baseline)"]
    print(f"{'command':<36} {'median s':>9} {'x python':>9} {'/ keras import':>15}")
    for name, seconds in results.items():
        print(f"{name:<36} {seconds:9.3f} {seconds / python:9.1f} {seconds / keras:15.2f}")


if __name__ == "__main__":
    main()
