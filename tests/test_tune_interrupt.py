"""Ctrl-C on `kbuilder tune --workers 2`, as a terminal sends it (SIGINT to the whole process
group), again and again at different moments: every process stops within a few seconds, the
command says how to resume and exits 130, with no traceback; the running trials' epochs are
shown before any trial finishes."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time

import optuna
import pytest

from tests.conftest import REPO

pytestmark = [pytest.mark.slow, pytest.mark.subprocess]

# Trials of a few seconds each (1,000 samples, 40 epochs), far more of them than a repetition
# finishes: every Ctrl-C lands while workers start, train or write their trials.
SPEC = """\
name: xor_interrupt
inputs: {x: {shape: [2]}}
params: {width: 8}
layers:
  - dense: {units: "${width}", activation: tanh}
  - dense: {name: out, units: 1, activation: sigmoid}
train:
  data:
    source: {type: inline, x: [[0, 0], [0, 1], [1, 0], [1, 1]], y: [0, 1, 1, 0],
             test_x: [[0, 0], [0, 1], [1, 0], [1, 1]], test_y: [0, 1, 1, 0]}
    validation: {type: test}
    shuffle: false
    repeat: 250
  optimizer: {type: sgd, learning_rate: 0.5}
  loss: binary_crossentropy
  metrics: [accuracy]
  epochs: 40
  batch_size: 8
  callbacks: [{type: tensorboard, enabled: false}, {type: model_checkpoint, enabled: false},
              {type: backup_and_restore, enabled: false}]
search:
  metric: val_accuracy
  trials: 200
  sampler: random
  pruner: none
  space:
    params.width: {int: [2, 16]}
"""
REPEATS = 6  # each of the three moments twice
STOP_WITHIN = 10.0  # seconds from Ctrl-C to the last process gone (the tuner allows workers 5)


class Tuner:
    """`kbuilder tune --workers 2` in a session of its own, its stderr read as it comes."""

    def __init__(self, folder):
        env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
        env.pop("KBUILDER_DEBUG", None)
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kbuilder.cli.app",
                "tune",
                "spec.yaml",
                "--workers",
                "2",
                "--heartbeat",
                "2",
            ],
            cwd=folder,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its own process group, as a terminal's foreground job
        )
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.process.stderr:
            self.lines.append(line)

    def wait_for_trial(self, first: int, epoch: int, timeout: float = 300) -> None:
        """Until a trial numbered `first` or later (one this run started) shows, at `epoch` or later
        (0: as soon as it starts)."""
        pattern = re.compile(r"^trial (\d+) (starting|epoch (\d+)/)")

        def seen(line: str) -> bool:
            found = pattern.match(line)
            return bool(found) and int(found[1]) >= first and int(found[3] or 0) >= epoch

        deadline = time.monotonic() + timeout
        while not any(seen(line) for line in self.lines):
            assert self.process.poll() is None, "".join(self.lines)
            assert time.monotonic() < deadline, f"no trial {first}+ at epoch {epoch}:\n" + "".join(self.lines)
            time.sleep(0.05)

    def end(self) -> None:
        """After a failed check: the tuner and its workers go with the test."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def wait_for_file(self, path, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not path.exists():
            assert self.process.poll() is None and time.monotonic() < deadline, "".join(self.lines)
            time.sleep(0.05)

    def ctrl_c(self) -> float:
        """SIGINT to the process group; seconds until no process of the group is left."""
        sent = time.monotonic()
        os.killpg(self.process.pid, signal.SIGINT)
        deadline = sent + 60
        while time.monotonic() < deadline:
            self.process.poll()
            try:
                os.killpg(self.process.pid, 0)
            except ProcessLookupError:
                break  # the tuner and its workers are all gone
            time.sleep(0.02)
        elapsed = time.monotonic() - sent
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        self.reader.join(timeout=10)
        return elapsed


def load(folder) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = f"sqlite:///{folder / 'runs' / 'tune-xor_interrupt' / 'study.db'}"
    return optuna.load_study(study_name="xor_interrupt", storage=storage)


def trial_count(folder) -> int:
    if not (folder / "runs" / "tune-xor_interrupt" / "study.db").exists():
        return 0  # (opening a SQLite URL would create the file)
    try:
        return len(load(folder).get_trials(deepcopy=False))
    except KeyError:  # stopped before the study was created
        return 0


def test_ctrl_c_stops_every_worker_every_time(tmp_path):
    (tmp_path / "spec.yaml").write_text(SPEC)
    times = []
    for repeat in range(REPEATS):
        first = trial_count(tmp_path)  # trials of earlier repetitions (some still marked running)
        tuner = Tuner(tmp_path)
        try:
            if repeat % 3 == 0:  # while the workers start (importing, opening the study)
                tuner.wait_for_file(tmp_path / "runs" / "tune-xor_interrupt" / "study.db")
                time.sleep(0.3 + repeat / 4)
            elif repeat % 3 == 1:  # as soon as a new trial shows (the figures come once a second)
                tuner.wait_for_trial(first, epoch=0)
            else:  # in the middle of a new trial's training
                tuner.wait_for_trial(first, epoch=3)
        except BaseException:
            tuner.end()
            raise
        elapsed = tuner.ctrl_c()
        times.append(elapsed)
        print(f"repetition {repeat}: stopped in {elapsed:.2f} s")
        stderr = "".join(tuner.lines)
        assert elapsed < STOP_WITHIN, f"repetition {repeat}: {elapsed:.1f} s\n{stderr}"
        assert tuner.process.returncode == 130, f"repetition {repeat}\n{stderr}"
        assert "interrupted" in stderr and "run the same command to resume" in stderr, stderr
        assert "Traceback" not in stderr and "Interrupted" not in stderr, stderr
        if repeat % 3 == 2:  # piped: a plain line per new epoch with the trial's figures and values
            line = next(line for line in tuner.lines if " epoch " in line)
            assert "/40 val_accuracy=" in line and "| params.width=" in line, line
    study = optuna.load_study(
        study_name="xor_interrupt",
        storage=f"sqlite:///{tmp_path / 'runs' / 'tune-xor_interrupt' / 'study.db'}",
    )
    assert study.metric_names == ["val_accuracy"]  # what optuna-dashboard shows
    print(f"Ctrl-C: {len(times)} stops, worst {max(times):.2f} s, mean {sum(times) / len(times):.2f} s")
