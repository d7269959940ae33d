"""tools/bench_step.py runs both ways end to end and reports figures that can be compared
(no speed is checked: that is the benchmark's job, on an idle machine)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.subprocess
def test_bench_step_times_both_ways(tmp_path):
    out = tmp_path / "step.json"
    command = [sys.executable, "tools/bench_step.py", "--steps", "1", "--json", str(out)]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    figures = json.loads(out.read_text())
    tensorflow, torch = figures["tensorflow"], figures["torch"]
    # kbuilder's auto choice for LeNet-5 on a CPU: no XLA (tools/bench_train.md).
    assert tensorflow["way"].startswith("tensorflow") and "jit_compile=False, float32" in tensorflow["way"]
    assert torch["way"].startswith("torch")
    for way in (tensorflow, torch):
        assert 0 < way["forward_ms"] < way["forward_backward_ms"], way
        assert 0 < way["step_ms"]
    assert figures["floor"] == pytest.approx(tensorflow["forward_backward_ms"] / torch["step_ms"])
    assert "PyTorch's whole step" in done.stdout
