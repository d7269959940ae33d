"""How long `kbuilder build` and `kbuilder check` take, and how much memory they use, with
the table from the spec's rules (the default, no Keras) against `--keras` (the model built).

Each command runs in a fresh process, several times; the figures are the median wall time,
the median CPU time (user + system: what a loaded machine stretches least) and the largest
peak resident memory of the process (its own rusage, read by os.wait4).
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


def measured(argv: list[str]) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds, peak resident MiB) of one run of `argv` in a fresh process."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        message = proc.stderr.read().decode() if proc.stderr else ""
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}: {message[-500:]}")
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024  # maxrss: KiB on Linux


def bench(argv: list[str], repeat: int) -> tuple[float, float, float]:
    runs = [measured(argv) for _ in range(repeat)]
    return (
        statistics.median(r[0] for r in runs),
        statistics.median(r[1] for r in runs),
        max(r[2] for r in runs),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("specs", nargs="*", default=list(SPECS))
    parser.add_argument("--repeat", type=int, default=5, help="runs per static command (median)")
    parser.add_argument("--keras-repeat", type=int, default=1, help="runs per --keras command")
    args = parser.parse_args()
    cli = [sys.executable, "-m", "kbuilder.cli.app"]
    print(f"load average before: {Path('/proc/loadavg').read_text().split()[:3]}")
    print(
        f"{'command':<34} {'static: wall s':>14} {'CPU s':>6} {'MiB':>5}   {'--keras: wall s':>15} {'CPU s':>6} {'MiB':>5}"
    )
    for name in args.specs:
        path = str(REPO / "specs" / f"{name}.yaml")
        for command in ("build", "check"):
            argv = [*cli, command, path, "--format", "plain"]
            static = bench(argv, args.repeat)
            keras = bench([*argv, "--keras"], args.keras_repeat)
            print(
                f"{'kbuilder ' + command + ' ' + name:<34} {static[0]:>14.2f} {static[1]:>6.2f} {static[2]:>5.0f}   "
                f"{keras[0]:>15.2f} {keras[1]:>6.2f} {keras[2]:>5.0f}",
                flush=True,
            )
    print(f"load average after: {Path('/proc/loadavg').read_text().split()[:3]}")


if __name__ == "__main__":
    main()
