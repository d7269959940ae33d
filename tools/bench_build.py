"""How long `kbuilder build` and `kbuilder check` take, and how much memory they use, with
the table from the spec's rules (the default, no Keras) against `--keras` (the model built).

Each command runs in a fresh process, several times; the figures are the median wall time
and the largest peak resident memory of the process (its own rusage, read by os.wait4).
Goal (issue 21): under 1 s and under 150 MB for each spec, static, on an idle machine.

    python tools/bench_build.py [--repeat 5] [--keras-repeat 1] [SPEC ...]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SPECS = ("lenet5", "resnet50", "densenet121", "efficientnet_b0")


def measured(argv: list[str]) -> tuple[float, float]:
    """(wall seconds, peak resident MiB) of one run of `argv` in a fresh process."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        message = proc.stderr.read().decode() if proc.stderr else ""
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}: {message[-500:]}")
    return seconds, usage.ru_maxrss / 1024  # ru_maxrss is in KiB on Linux


def bench(argv: list[str], repeat: int) -> tuple[float, float]:
    runs = [measured(argv) for _ in range(repeat)]
    return statistics.median(s for s, _ in runs), max(m for _, m in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("specs", nargs="*", default=list(SPECS))
    parser.add_argument("--repeat", type=int, default=5, help="runs per static command (median)")
    parser.add_argument("--keras-repeat", type=int, default=1, help="runs per --keras command")
    args = parser.parse_args()
    cli = [sys.executable, "-m", "kbuilder.cli.app"]
    print(f"load average before: {Path('/proc/loadavg').read_text().split()[:3]}")
    print(f"{'command':<42} {'static s':>9} {'static MiB':>11} {'--keras s':>10} {'--keras MiB':>12}")
    for name in args.specs:
        path = str(REPO / "specs" / f"{name}.yaml")
        for command in ("build", "check"):
            argv = [*cli, command, path, "--format", "plain"]
            static = bench(argv, args.repeat)
            keras = bench([*argv, "--keras"], args.keras_repeat)
            print(
                f"{'kbuilder ' + command + ' ' + name:<42} {static[0]:>9.2f} {static[1]:>11.0f} "
                f"{keras[0]:>10.2f} {keras[1]:>12.0f}",
                flush=True,
            )
    print(f"load average after: {Path('/proc/loadavg').read_text().split()[:3]}")


if __name__ == "__main__":
    main()
