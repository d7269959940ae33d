"""A plain `kbuilder build` prints the table and nothing else: TensorFlow's start-up log
lines (oneDNN notices, "failed call to cuInit", absl's InitializeLog warning) stay out
of the output unless --debug."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO, SPECS


def _clean_env() -> dict[str, str]:
    # Only what a user's shell would have: no TF_CPP_MIN_LOG_LEVEL, no KERAS_BACKEND.
    keep = ("PATH", "HOME", "LANG", "TMPDIR")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env["PYTHONPATH"] = str(REPO)
    return env


@pytest.mark.subprocess
def test_plain_build_prints_only_the_table():
    proc = subprocess.run(
        [sys.executable, "-m", "kbuilder.cli.app", "build", str(SPECS / "lenet5.yaml"), "--format", "plain"],
        capture_output=True,
        text=True,
        env=_clean_env(),
        cwd=REPO,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("Model: lenet5") and lines[-1].startswith("MACs per sample:")
    assert not [line for line in lines if "cuInit" in line or "oneDNN" in line or "absl" in line]


@pytest.mark.subprocess
def test_debug_turns_the_quieting_off():
    """With --debug nothing is hidden: no log level is set and TensorFlow is not pre-imported."""
    code = (
        "import os, sys; os.environ['KBUILDER_DEBUG'] = '1'; "
        "from kbuilder.backend import quiet_tensorflow_startup as q; q(); "
        "print('tensorflow' in sys.modules, os.environ.get('TF_CPP_MIN_LOG_LEVEL'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=_clean_env(),
        cwd=REPO,
        timeout=120,
        check=False,
    ).stdout
    assert out.strip() == "False None"


def test_captured_fd_is_replayed_when_the_import_fails(capfd):
    from kbuilder.backend import _captured_stderr_fd

    with _captured_stderr_fd() as captured:
        os.write(2, b"C++ says why\n")
        captured.replay = True
    assert "C++ says why" in capfd.readouterr().err
    with _captured_stderr_fd():
        os.write(2, b"noise\n")
    assert "noise" not in capfd.readouterr().err


# What the libraries print past TF_CPP_MIN_LOG_LEVEL when nothing hides it.
NOISE = ("absl", "oneDNN", "cudart", "cuInit", "custom gradients", "XNNPACK", "inference_type")


@pytest.mark.slow
@pytest.mark.subprocess
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_training_on_other_backends_starts_as_quietly(backend, tmp_path):
    """Keras seeds TensorFlow's generator on every backend and the export verifies a
    SavedModel: TensorFlow loads on JAX and torch too, and must be as quiet there."""
    from tests.test_train_support import DATASETS, write_spec

    spec = write_spec(tmp_path, train=TINY_TRAIN)
    proc = subprocess.run(
        [sys.executable, "-m", "kbuilder.cli.app", "train", str(spec), "--backend", backend]
        + ["--data-dir", str(DATASETS), "--out", str(tmp_path / "run")],
        capture_output=True,
        text=True,
        env=_clean_env(),
        cwd=REPO,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    noise = [line for line in proc.stderr.splitlines() if any(word in line for word in NOISE)]
    assert not noise, proc.stderr
    assert "Epoch 1/1 - " in proc.stdout


@pytest.mark.slow
@pytest.mark.subprocess
def test_a_quantized_tflite_export_prints_only_its_result(tmp_path):
    from tests.test_train_support import DATASETS

    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "kbuilder.cli.app",
            "export",
            str(SPECS / "mnist_mlp.yaml"),
            str(tmp_path / "x"),
        ]
        + ["--to", "tflite", "--quantize", "int8", "--data-dir", str(DATASETS)],
        capture_output=True,
        text=True,
        env=_clean_env(),
        cwd=REPO,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    # A spec's export says once that its weights are untrained; nothing else reaches stderr.
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and "weights are UNTRAINED" in lines[0], proc.stderr
    assert proc.stdout.startswith("exported mnist_mlp") and len(proc.stdout.splitlines()) == 1


def test_hidden_native_lines_come_back_when_the_block_fails(capfd):
    from kbuilder.backend import native_lines_hidden

    with native_lines_hidden():
        os.write(2, b"converter chatter\n")
    assert "converter chatter" not in capfd.readouterr().err
    with pytest.raises(RuntimeError), native_lines_hidden():
        os.write(2, b"why it failed\n")
        raise RuntimeError("conversion failed")
    assert "why it failed" in capfd.readouterr().err


TINY_TRAIN = """
train:
  data:
    source: {type: keras, name: mnist}
    limit: 600
    test_limit: 200
    validation: {type: none}
    preprocess:
      - {type: rescale, scale: 0.00392156862745098}
  optimizer: {type: sgd, learning_rate: 0.05}
  loss: sparse_categorical_crossentropy
  epochs: 1
  batch_size: 50
  seed: 1
"""
