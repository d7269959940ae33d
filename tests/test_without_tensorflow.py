"""kbuilder builds and trains a spec where TensorFlow is not installed (a GPU machine with
JAX only, as tools/gpu_bench.py expects), and the GPU benchmark's dry run passes there.

Each test starts Python with a `sitecustomize` that makes `import tensorflow` fail, as it
does where the package is absent, and KERAS_BACKEND=jax. Each is as short as it can be: LeNet-5
trains one epoch of 256 images; the dry run trains resnet50 (at 32x32, batch 2) and fashion_cnn
both ways for one epoch of two steps. lenet5_modern is left out of the dry run here (its kbuilder
training is the test above; what the bench adds for it is its hand-written Keras twin, 8 lines of
hand_model): its two processes would add a third of the run. Most of what remains is XLA compiling
resnet50's training step, twice (`--jit-compile false` is slower on the CPU: tools/gpu_bench.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import DATASETS, REPO, SPECS

pytestmark = [pytest.mark.slow, pytest.mark.subprocess]

MODELS = ("resnet50", "fashion_cnn")  # the dry run's models here (see above)
BLOCKER = "import sys\nsys.modules['tensorflow'] = None  # `import tensorflow` raises ModuleNotFoundError\n"


def run_without_tensorflow(tmp_path: Path, *command: str, timeout: int) -> subprocess.CompletedProcess:
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(BLOCKER)
    env = {
        **os.environ,
        "KERAS_BACKEND": "jax",
        "JAX_PLATFORMS": "cpu",
        "PYTHONPATH": os.pathsep.join([str(blocker), str(REPO)]),
    }
    return subprocess.run(
        [sys.executable, *command],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=timeout,
        check=False,
    )


def test_the_blocker_hides_tensorflow(tmp_path):
    proc = run_without_tensorflow(tmp_path, "-c", "import tensorflow", timeout=60)
    assert proc.returncode != 0 and "ModuleNotFoundError" in proc.stderr


def test_builds_and_trains_a_convolutional_spec_without_tensorflow(tmp_path):
    out = tmp_path / "run"
    proc = run_without_tensorflow(
        tmp_path,
        "-m",
        "kbuilder.cli.app",
        "train",
        str(SPECS / "lenet5_modern.yaml"),
        "--backend",
        "jax",
        "--set",
        "train.epochs=1",
        "--set",
        "train.data.limit=256",
        "--set",
        "train.data.test_limit=128",
        "--data-dir",
        str(DATASETS),
        "--out",
        str(out),
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["backend"] == "jax"
    assert metrics["settings"]["pipeline"] == "numpy"  # no tf.data without TensorFlow
    assert 0.0 <= metrics["test_accuracy"] <= 1.0
    assert "a SavedModel needs TensorFlow" in proc.stdout


def test_gpu_bench_dry_run_without_tensorflow(tmp_path):
    report = tmp_path / "bench.json"
    proc = run_without_tensorflow(
        tmp_path,
        "tools/gpu_bench.py",
        "--dry-run",
        "--models",
        *MODELS,
        "--epochs",
        "1",
        "--json",
        str(report),
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads(report.read_text())["rows"]
    assert {(r["model"], r["way"]) for r in rows} == {
        (model, way) for model in MODELS for way in ("kbuilder", "keras")
    }
    assert all(r["precision"] == "mixed_bfloat16" and r["images_per_second"] > 0 for r in rows)
    assert all(r["utilization"] is None for r in rows)  # a CPU has no entry in the peak table
    assert "| resnet50 | kbuilder | mixed_bfloat16 |" in proc.stdout
