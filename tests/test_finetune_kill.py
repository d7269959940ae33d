"""SIGKILL in the second phase of a phased run: the same command resumes in that phase (its
optimizer and frozen layers), and the run ends where an uninterrupted one ends."""

from __future__ import annotations

import json
import signal
import subprocess

import pytest

from kbuilder.spec import load_spec
from tests.test_crash_kill import TRAIN, _command, _env, _wait_for
from tests.test_finetune import MODEL
from tests.test_train_support import DATASETS, current_backend, write_spec

pytestmark = [pytest.mark.slow, pytest.mark.subprocess]

PHASED = TRAIN.replace("  epochs: 4\n", "") + (
    "  freeze: [hidden, bn]\n"
    "  phases:\n"
    "    - {name: head, epochs: 2}\n"
    "    - {name: all, epochs: 2, unfreeze: all, learning_rate: 0.001}\n"
)


def _backup_epoch(out) -> int | None:
    try:
        return json.loads((out / "backup" / "training_metadata.json").read_text())["epoch"]
    except (OSError, ValueError, KeyError):
        return None


def test_sigkill_in_phase_two_resumes_in_phase_two(tmp_path):
    spec = write_spec(tmp_path, train=PHASED, model=MODEL)
    out = tmp_path / "run"
    first = subprocess.Popen(_command(spec, out), env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        # Killed as soon as the backup holds epoch 3, the first of phase 2: epoch 4, the test
        # evaluation and the saved models take longer than the 20 ms between looks.
        _wait_for(lambda: _backup_epoch(out) == 3, "the backup of epoch 3", first)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == -signal.SIGKILL
    saved = json.loads((out / "backup" / "training_metadata.json").read_text())["epoch"]
    assert saved == 3, saved

    again = subprocess.run(
        _command(spec, out), env=_env(), capture_output=True, text=True, timeout=400, check=False
    )
    assert again.returncode == 0, again.stderr[-3000:]
    report = json.loads(again.stdout)
    assert report["resumed_after_epoch"] == 3 and len(report["epoch_seconds"]) == 1
    history = json.loads((out / "history.json").read_text())
    assert [(r["epoch"], r["phase"]) for r in history] == [(1, "head"), (2, "head"), (3, "all"), (4, "all")]

    from kbuilder.train import TrainOptions, train

    straight = train(
        load_spec(spec),
        TrainOptions(
            data_dir=DATASETS, out=tmp_path / "straight", backend=current_backend(), verbose=0, export=False
        ),
    )
    for resumed, uninterrupted in zip(history, straight.history):
        assert resumed["loss"] == pytest.approx(uninterrupted["loss"], rel=1e-3), (history, straight.history)
