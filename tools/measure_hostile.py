"""Time and peak memory kbuilder takes to refuse each hostile input (issue 10).

Each input runs as its own `kbuilder` process, the way a user meets it; the table gives
the exit code, the wall time and the process's peak resident memory (from wait4), next
to a valid tiny spec as the baseline (Python plus kbuilder's imports).

    python tools/measure_hostile.py              # markdown table on stdout
    python tools/measure_hostile.py --round3     # only issue 18's inputs (tools/hostile_round3.py)
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.test_hostile_input import HOSTILE_SPECS, HUGE_MODEL, _flow_alias_bomb
from tools.hostile_round3 import IN_PROCESS, round3_cases

MINIMAL = "name: m\ninputs: {x: {shape: [4]}}\nlayers:\n  - dense: 3\n"


def measure(args: list[str]) -> tuple[int, float, float, str]:
    """(exit code, seconds, peak MiB, first line of the message) of one kbuilder run."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "kbuilder.cli.app", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out, err = proc.communicate(timeout=300)
    seconds = time.perf_counter() - start
    # communicate() reaped the child; its rusage is in RUSAGE_CHILDREN as a running maximum,
    # so each measurement runs in a fresh helper process (see main).
    import resource

    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    lines = [line.strip() for line in (err + out).splitlines()]
    problems = [line for line in lines if line.startswith(("/", "--set", "no such"))]
    said = [line for line in lines if line and not line.startswith(("kbuilder:", "hint:"))]
    return proc.returncode, seconds, peak, (problems or said or [""])[0]


def _one(args: list[str]) -> None:
    if args[0] in IN_PROCESS:  # inputs no command line can carry, measured in this process
        code, seconds, peak, message = IN_PROCESS[args[0]](args[1:])
    else:
        code, seconds, peak, message = measure(args)
    print(f"{code}\t{seconds:.2f}\t{peak:.0f}\t{message[:110]}")


def main() -> None:
    if (
        len(sys.argv) > 1 and sys.argv[1] == "--one"
    ):  # a fresh process per measurement: peak memory is its own
        _one(sys.argv[2:])
        return
    work = Path(tempfile.mkdtemp(prefix="kbuilder-hostile-"))
    if "--round3" in sys.argv:
        table(round3_cases(work))
        return
    fifo = work / "fifo.yaml"
    os.mkfifo(fifo)
    cases: list[tuple[str, list[str]]] = []
    for name, text, _ in [("baseline: a valid tiny spec", MINIMAL, "")] + HOSTILE_SPECS:
        path = work / f"{len(cases)}.yaml"
        path.write_text(text, encoding="utf-8")
        cases.append((name, ["validate", str(path)]))
    huge = work / "huge.yaml"
    huge.write_text(HUGE_MODEL)
    cases += [
        ("--set layers=&a [*a]", ["validate", str(work / "0.yaml"), "--set", "layers=&a [*a]"]),
        ("--set alias bomb", ["validate", str(work / "0.yaml"), "--set", "layers=" + _flow_alias_bomb()]),
        ("validate a directory", ["validate", str(work)]),
        ("validate /dev/zero", ["validate", "/dev/zero"]),
        ("validate a FIFO", ["validate", str(fifo)]),
        ("validate /no/such/dir/resnet50.yaml", ["validate", "/no/such/dir/resnet50.yaml"]),
        ("baseline: check xor_mlp (imports Keras)", ["check", "xor_mlp"]),
        ("check: flatten 224x224x3 + dense 1e6 (150 G params)", ["check", str(huge)]),
    ]
    table(cases)


def table(cases: list[tuple[str, list[str]]]) -> None:
    print("| input | exit | seconds | peak MiB | message |")
    print("| --- | --- | --- | --- | --- |")
    for name, args in cases:
        result = subprocess.run(
            [sys.executable, __file__, "--one", *args], capture_output=True, text=True, check=False
        )
        code, seconds, peak, message = (result.stdout.strip().split("\t", 3) + ["", "", "", ""])[:4]
        print(f"| {name} | {code} | {seconds} | {peak} | {message.replace('|', '/')} |", flush=True)


if __name__ == "__main__":
    main()
