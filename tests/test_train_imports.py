"""What may be imported before a backend is chosen: `kbuilder train` and the experiments import
these modules first, then select the backend, then `train` imports the Keras side (the stages)."""

from __future__ import annotations

import subprocess
import sys

import pytest

# Modules that must stay free of Keras and every backend at import time.
LIGHT = (
    "kbuilder.train",
    "kbuilder.train.options",
    "kbuilder.train.run",
    "kbuilder.train.runner",
    "kbuilder.train.performance",  # apply_threads runs before the backend starts
    "kbuilder.train.distribute",  # join_processes runs before JAX computes anything
    "kbuilder.train.data",
    "kbuilder.cli.train",
)


@pytest.mark.subprocess
def test_the_light_train_modules_import_no_framework():
    code = (
        "import importlib, sys\n"
        f"for name in {LIGHT!r}: importlib.import_module(name)\n"
        "print([m for m in ('keras', 'tensorflow', 'jax', 'torch') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]", out


@pytest.mark.subprocess
def test_the_stages_are_what_imports_keras():
    code = "import sys\nimport kbuilder.train.stages\nprint('keras' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "True", out
