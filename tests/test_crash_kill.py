"""SIGKILL for real (issue 10): a `kbuilder train` process killed in the middle of an epoch is
resumed by the same command from its last completed epoch, repeats no finished epoch, and ends
where an uninterrupted run ends. While it runs, a second process on the same --out is refused,
and the kill does not leave the lock stuck."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from kbuilder.spec import load_spec
from tests.test_train_support import DATASETS, REPO_ROOT, current_backend, write_spec

pytestmark = [pytest.mark.slow, pytest.mark.subprocess]

EPOCHS = 4
# Slow enough epochs (no XLA, one batch per step) that the kill lands inside one.
TRAIN = f"""
train:
  data:
    source: {{type: keras, name: mnist}}
    limit: 2000
    test_limit: 500
    validation: {{type: split, fraction: 0.2}}
    preprocess:
      - {{type: rescale, scale: 0.00784313725490196, offset: -1.0}}
  optimizer: {{type: sgd, learning_rate: 0.01, momentum: 0.9}}
  loss: sparse_categorical_crossentropy
  epochs: {EPOCHS}
  batch_size: 8
  seed: 5
  performance: {{jit_compile: false, steps_per_execution: 1}}
  callbacks: [{{type: tensorboard, enabled: false}}]
"""


def _command(spec, out) -> list[str]:
    return [
        sys.executable,
        "-m",
        "kbuilder.cli.app",
        "train",
        str(spec),
        "--data-dir",
        str(DATASETS),
        "--out",
        str(out),
        "--backend",
        current_backend(),
        "--no-export",
        "--json",
    ]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO_ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}


def _wait_for(condition, what: str, process: subprocess.Popen, timeout: float = 240.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if process.poll() is not None:
            pytest.fail(f"the training process ended (exit {process.returncode}) before {what}")
        time.sleep(0.02)
    pytest.fail(f"timed out waiting for {what}")


def _rows(out):
    try:
        return json.loads((out / "history.json").read_text())
    except (OSError, ValueError):
        return []


def test_sigkill_mid_epoch_then_the_same_command_resumes(tmp_path):
    spec = write_spec(tmp_path, train=TRAIN)
    out = tmp_path / "run"
    first = subprocess.Popen(_command(spec, out), env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        lock = out / ".kbuilder-lock"
        _wait_for(
            lambda: lock.is_file() and lock.read_text().strip() == str(first.pid), "the run is locked", first
        )

        # A second process on the same --out is refused at once, naming the owner. The first is
        # paused meanwhile (it keeps its lock), so a slow start of the second on a loaded machine
        # cannot let the first finish before the second asks.
        first.send_signal(signal.SIGSTOP)
        try:
            second = subprocess.run(
                _command(spec, out), env=_env(), capture_output=True, text=True, timeout=240, check=False
            )
        finally:
            first.send_signal(signal.SIGCONT)
        assert second.returncode == 2, second.stderr
        assert f"another `kbuilder train` (process {first.pid}) is writing" in second.stdout + second.stderr
        assert first.poll() is None

        rows = _wait_for(lambda: [r for r in _rows(out) if r["epoch"] >= 2], "two epochs", first)
        time.sleep(rows[-1]["seconds"] / 2)  # half-way through the next epoch
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == -signal.SIGKILL
    saved = json.loads((out / "backup" / "training_metadata.json").read_text())["epoch"]
    assert 2 <= saved < EPOCHS, saved
    assert not (out / "metrics.json").exists()

    # The same command again: resumes after the saved epoch (the lock died with the process).
    again = subprocess.run(
        _command(spec, out), env=_env(), capture_output=True, text=True, timeout=400, check=False
    )
    assert again.returncode == 0, again.stderr[-3000:]
    report = json.loads(again.stdout)
    assert report["resumed_after_epoch"] == saved and report["epochs_run"] == EPOCHS
    assert len(report["epoch_seconds"]) == EPOCHS - saved, "finished epochs are not trained again"
    history = json.loads((out / "history.json").read_text())
    assert [r["epoch"] for r in history] == list(range(1, EPOCHS + 1))
    assert len((out / "history.csv").read_text().strip().splitlines()) == 1 + EPOCHS
    assert not (out / "backup").exists() and (out / "best.keras").stat().st_size > 0

    # An uninterrupted run of the same spec reaches the same place.
    from kbuilder.train import TrainOptions, train

    straight = train(
        load_spec(spec),
        TrainOptions(
            data_dir=DATASETS, out=tmp_path / "straight", backend=current_backend(), verbose=0, export=False
        ),
    )
    assert abs(report["test_accuracy"] - straight.metrics["test_accuracy"]) <= 0.01, (
        report,
        straight.metrics,
    )
    for resumed, uninterrupted in zip(history, straight.history):
        assert resumed["loss"] == pytest.approx(uninterrupted["loss"], rel=1e-3), (history, straight.history)
