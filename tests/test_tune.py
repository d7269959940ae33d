"""Real studies through the `kbuilder tune` command: two worker processes sharing SQLite (the
tuner killed with its workers and started again), and two workers on a PostgreSQL server this
test starts (one worker killed mid-trial). Every study must reach its count with no trial
trained twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from tests.conftest import REPO
from tests.postgres import postgres_server

pytestmark = [pytest.mark.slow, pytest.mark.subprocess]

SPEC = """\
name: xor_tune
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
    repeat: 25
  optimizer: {type: sgd, learning_rate: 0.5}
  loss: binary_crossentropy
  epochs: 2
  batch_size: 4
  # Small trials: no TensorBoard logs, checkpoints or backups to write.
  callbacks: [{type: tensorboard, enabled: false}, {type: model_checkpoint, enabled: false},
              {type: backup_and_restore, enabled: false}]
search:
  metric: val_loss
  sampler: random
  space:
    train.optimizer.learning_rate: {float: [0.01, 1.0], log: true}
    params.width: {int: [2, 16]}
"""


def tune(tmp_path: Path, *args: str, wait: bool = True):
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [sys.executable, "-m", "kbuilder.cli.app", "tune", "spec.yaml", "--heartbeat", "1", *args]
    if not wait:
        # A session of its own: the test can end the tuner with its workers, as a terminal would.
        return subprocess.Popen(
            command,
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
    return subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, check=False
    )


def load(storage: str, name: str = "xor_tune") -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.load_study(study_name=name, storage=storage)


def wait_for_running_trial(
    storage: str, process, *, complete: int, name: str = "xor_tune", timeout: float = 400
):
    """The first trial running in a worker (its pid known) once `complete` trials have finished."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        try:
            trials = load(storage, name).get_trials(deepcopy=False)
        except Exception:  # noqa: BLE001  (the study is not created yet)
            trials = []
        done = sum(t.state.is_finished() for t in trials)
        running = [t for t in trials if t.state == TrialState.RUNNING and "pid" in t.user_attrs]
        if done >= complete and running:
            return running[0]
        time.sleep(0.1)
    raise AssertionError("no trial was running in time")


def check_study(study: optuna.Study, target: int, study_dir: Path) -> list[optuna.trial.FrozenTrial]:
    """The study has `target` counted trials, each trained once into its own complete run directory."""
    trials = study.get_trials(deepcopy=False)
    counted = [
        t
        for t in trials
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED)
        or (t.state == TrialState.FAIL and "error" in t.user_attrs)
    ]
    assert len(counted) == target, [(t.number, t.state, t.user_attrs) for t in trials]
    run_dirs = [t.user_attrs["run_dir"] for t in trials if t.user_attrs.get("run_dir")]
    assert len(run_dirs) == len(set(run_dirs)), "two trials trained into one run directory"
    for trial in counted:
        if trial.state != TrialState.FAIL:
            run = Path(trial.user_attrs["run_dir"])
            assert run.parent == (study_dir / "trials").resolve()
            metrics = json.loads((run / "metrics.json").read_text())
            assert metrics["val_loss"] == trial.value or trial.state == TrialState.PRUNED
            assert (
                yaml.safe_load((run / "spec.yaml").read_text())["params"]["width"]
                == trial.params["params.width"]
            )
    return trials


def test_two_workers_share_sqlite_and_a_killed_tuner_continues(tmp_path):
    # A grid over output widths, one of which the labels cannot train (validate checks each value
    # alone, not against the data): those trials fail with their message and count.
    spec = (
        SPEC.replace("sampler: random", "sampler: grid")
        .replace(
            "    params.width: {int: [2, 16]}\n",
            "    params.width: {int: [4, 12], step: 4}\n    layers.1.dense.units: {choice: [1, 3]}\n",
        )
        .replace("    train.optimizer.learning_rate: {float: [0.01, 1.0], log: true}\n", "")
    )
    (tmp_path / "spec.yaml").write_text(spec)
    study_dir = tmp_path / "runs" / "tune-xor_tune"
    storage = f"sqlite:///{study_dir / 'study.db'}"
    process = tune(tmp_path, "--workers", "2", wait=False)
    victim = wait_for_running_trial(storage, process, complete=1)
    os.killpg(process.pid, signal.SIGKILL)  # the tuner and both its workers die
    process.communicate()
    finished_before = {t.number: t.params for t in load(storage).get_trials() if t.state.is_finished()}
    result = tune(tmp_path, "--workers", "2")  # the same command again
    assert result.returncode == 0, result.stderr
    trials = check_study(load(storage), 6, study_dir)
    assert {
        t.number: t.params for t in trials if t.number in finished_before
    } == finished_before  # kept as they were
    counted = [t for t in trials if t.state != TrialState.FAIL or "error" in t.user_attrs]
    dump = [
        (
            t.number,
            t.state.name,
            t.params,
            t.system_attrs.get("grid_id"),
            t.system_attrs.get("failed_trial"),
            sorted(set(t.user_attrs) & {"error", "surplus", "pid"}),
        )
        for t in trials
    ]
    assert sorted((t.params["params.width"], t.params["layers.1.dense.units"]) for t in counted) == sorted(
        (w, u) for w in (4, 8, 12) for u in (1, 3)
    ), dump  # every grid point trained once
    killed = next(t for t in trials if t.number == victim.number)
    assert killed.state == TrialState.FAIL and "error" not in killed.user_attrs
    assert [t.params for t in trials if t.system_attrs.get("failed_trial") == victim.number] == [
        victim.params
    ]  # retried
    failed = [t for t in trials if "error" in t.user_attrs]
    assert len(failed) == 3 and all(t.params["layers.1.dense.units"] == 3 for t in failed)
    assert failed[0].user_attrs["error"].split(":")[0] in result.stdout  # the table names the failures
    from kbuilder.spec import load_spec

    loaded = load_spec(study_dir / "best.yaml")  # `kbuilder train best.yaml` takes it as it is
    assert loaded.spec.search is None and loaded.spec.layers[1]["dense"]["units"] == 1
    for plot in ("history", "slice", "importance"):
        assert (study_dir / "plots" / f"{plot}.png").stat().st_size > 1000
    report = subprocess.run(
        [sys.executable, "-m", "kbuilder.cli.app", "tune", "--report", str(study_dir), "-f", "json"],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert report.returncode == 0, report.stderr
    assert json.loads(report.stdout)["counted"] == 6


@pytest.mark.postgres
def test_two_workers_share_a_postgresql_study_and_a_killed_worker_is_retried(tmp_path):
    (tmp_path / "spec.yaml").write_text(SPEC)
    with postgres_server() as url:
        process = tune(
            tmp_path,
            "--workers",
            "2",
            "--trials",
            "4",
            "--storage",
            url,
            "--study",
            "pg_study",
            "-f",
            "json",
            wait=False,
        )
        victim = wait_for_running_trial(url, process, complete=1, name="pg_study")
        os.kill(
            victim.user_attrs["pid"], signal.SIGKILL
        )  # one worker dies mid-trial; the other finishes the study
        out, err = process.communicate(timeout=600)
        assert process.returncode == 0, err
        summary = json.loads(out)
        assert summary["storage"].startswith("postgresql") and (summary["counted"], summary["complete"]) == (
            4,
            4,
        )
        trials = check_study(load(url, "pg_study"), 4, tmp_path / "runs" / "tune-pg_study")
        killed = next(t for t in trials if t.number == victim.number)
        assert killed.state == TrialState.FAIL and "error" not in killed.user_attrs
        retries = [t for t in trials if t.system_attrs.get("failed_trial") == victim.number]
        assert (
            len(retries) == 1
            and retries[0].params == victim.params
            and retries[0].state == TrialState.COMPLETE
        )
        assert (
            len({t.user_attrs["pid"] for t in trials if "pid" in t.user_attrs}) == 2
        )  # both workers trained
        assert summary["trials"][0]["val_loss"] == min(t.value for t in trials if t.value is not None)
