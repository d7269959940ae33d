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
