"""Crash safety of a training run (issue 10): the run directory is ours alone, every file in it
is written atomically, checkpoints survive kills, full disks and NaN losses, and the best
model survives a resume. The SIGKILL and two-process lock tests are in test_crash_kill.py."""

from __future__ import annotations

import errno
import json

import numpy as np
import pytest

from kbuilder.errors import RuntimeFailure, UsageError
from kbuilder.spec import load_spec
from kbuilder.storage import rundir as rd
from tests.test_train_cli import run_cli
from tests.test_train_support import DATASETS, current_backend, write_spec

pytestmark = pytest.mark.slow

RESOLVED = {"name": "tiny_mlp", "train": {"epochs": 3, "seed": 3}, "layers": [{"dense": {"units": 4}}]}


def _cli_train(spec, out, *extra):
    return run_cli(
        [
            "train",
            str(spec),
            "--data-dir",
            str(DATASETS),
            "--out",
            str(out),
            "--backend",
            current_backend(),
            "--no-export",
            *extra,
        ]
    )


# --- the run directory is never someone else's folder ----------------------------------------


def test_a_folder_with_notes_and_a_backup_folder_is_not_an_interrupted_run(tmp_path):
    out = tmp_path / "mine"
    (out / "backup").mkdir(parents=True)
    (out / "backup" / "thesis.tex").write_text("three years of work")
    (out / "notes.txt").write_text("notes")
    code, _, stderr = _cli_train(write_spec(tmp_path), out)
    assert code == 2 and "holds no kbuilder run" in stderr, stderr
    assert sorted(p.name for p in out.iterdir()) == ["backup", "notes.txt"]
    assert (out / "backup" / "thesis.tex").read_text() == "three years of work"


def test_training_into_the_current_folder_never_overwrites_the_users_spec(tmp_path, monkeypatch):
    spec = write_spec(tmp_path, name="spec.yaml")
    before = spec.read_text()
    monkeypatch.chdir(tmp_path)
    code, _, stderr = _cli_train("spec.yaml", ".")
    assert code == 2 and "holds no kbuilder run" in stderr, stderr
    assert spec.read_text() == before and sorted(p.name for p in tmp_path.iterdir()) == ["spec.yaml"]


def test_an_interrupted_run_of_another_spec_is_refused_and_keeps_its_spec(tmp_path):
    run = rd.open_run_dir("tiny_mlp", tmp_path / "run", resolved=RESOLVED)
    rd.write_spec(run, RESOLVED)
    rd.write_json(run / "history.json", [{"epoch": 1, "loss": 1.0}])  # one epoch finished
    run.release()
    saved = (tmp_path / "run" / "spec.yaml").read_text()
    other = json.loads(json.dumps(RESOLVED))
    other["layers"][0]["dense"]["units"] = 8
    with pytest.raises(UsageError, match=r"interrupted run of another spec.*layers differ.*--resume"):
        rd.open_run_dir("tiny_mlp", tmp_path / "run", resolved=other)
    assert (tmp_path / "run" / "spec.yaml").read_text() == saved
    # More epochs extend the same run: that resumes.
    longer = json.loads(json.dumps(RESOLVED))
    longer["train"]["epochs"] = 10
    rd.open_run_dir("tiny_mlp", tmp_path / "run", resolved=longer).release()


def test_a_symbolic_link_in_a_run_directory_is_refused(tmp_path):
    run = rd.open_run_dir("tiny_mlp", tmp_path / "run", resolved=RESOLVED)
    run.release()
    outside = tmp_path / "precious.txt"
    outside.write_text("keep me")
    (tmp_path / "run" / "history.csv").symlink_to(outside)
    with pytest.raises(UsageError, match="symbolic link"):
        rd.open_run_dir("tiny_mlp", tmp_path / "run", resolved=RESOLVED)
    assert outside.read_text() == "keep me"


def test_a_locked_run_directory_is_refused_and_a_released_lock_is_free(tmp_path):
    first = rd.open_run_dir("tiny_mlp", tmp_path / "run", resolved=RESOLVED)
    with pytest.raises(UsageError, match="another `kbuilder train`"):
        rd.open_run_dir("tiny_mlp", tmp_path / "run", resolved=RESOLVED)
    first.release()
    rd.open_run_dir("tiny_mlp", tmp_path / "run", resolved=RESOLVED).release()


# --- atomic files, full disks ----------------------------------------------------------------


def _tiny_model():
    import keras

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    return model


def _full_disk_after(nbytes: int):
    """A writer that gets `nbytes` out and then finds the disk full."""

    def write(self, filepath, *args, **kwargs):
        with open(filepath, "wb") as handle:
            handle.write(b"PK\x03\x04" + b"\0" * nbytes)
        raise OSError(errno.ENOSPC, "No space left on device")

    return write


def test_a_full_disk_during_a_checkpoint_keeps_the_previous_one(tmp_path, monkeypatch):
    import keras

    model = _tiny_model()
    target = tmp_path / "best.keras"
    rd.save_model(model, target)
    good = target.read_bytes()
    monkeypatch.setattr(keras.Model, "save", _full_disk_after(100))
    with pytest.raises(RuntimeFailure, match="disk is full.*previous best.keras is kept") as caught:
        rd.save_model(model, target)
    assert caught.value.exit_code == 3
    assert target.read_bytes() == good
    assert [p.name for p in tmp_path.iterdir()] == ["best.keras"], "no temporary file is left"
    monkeypatch.undo()
    assert keras.saving.load_model(target).count_params() == 3


def test_a_kill_during_the_backup_write_leaves_the_previous_backup_loadable(tmp_path, monkeypatch):
    import keras

    from kbuilder.train.checkpoints import DivergenceGuard as guard_class
    from kbuilder.train.checkpoints import RunBackup as backup_class
    from kbuilder.train.checkpoints import read_backup_state

    model = _tiny_model()
    backup = backup_class(tmp_path / "backup", "epoch", guard_class())
    backup.set_model(model)
    backup.on_epoch_end(0)
    saved_weights = [w.copy() for w in model.get_weights()]

    def killed_midway(self, filepath, *args, **kwargs):
        with open(filepath, "wb") as handle:
            handle.write(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)  # half an HDF5 file: "bad object header"
        raise KeyboardInterrupt  # stands for the SIGKILL: nothing after this point runs

    model.set_weights([w + 1 for w in model.get_weights()])
    monkeypatch.setattr(keras.Model, "save_weights", killed_midway)
    with pytest.raises(KeyboardInterrupt):
        backup.on_epoch_end(1)
    monkeypatch.undo()
    assert read_backup_state(tmp_path / "backup")["epoch"] == 1
    restored = _tiny_model()
    again = backup_class(tmp_path / "backup", "epoch", guard_class())
    again.set_model(restored)
    again.on_train_begin()
    assert restored._initial_epoch == 1
    for before, after in zip(saved_weights, restored.get_weights()):
        np.testing.assert_array_equal(before, after)


def test_a_worse_epoch_after_a_resume_never_replaces_the_best_model(tmp_path):
    """keras-team/keras#17012: the best figure is kept with the run (best.json), not in memory."""
    from kbuilder.train.checkpoints import BestCheckpoint as best_class
    from kbuilder.train.checkpoints import DivergenceGuard as guard_class
    from kbuilder.train.checkpoints import carried_best

    run = rd.RunDir(tmp_path)
    first = best_class(run, "val_loss", False, None, guard_class())
    first.set_model(_tiny_model())
    first.on_epoch_end(0, {"val_loss": 0.5})
    first.on_epoch_end(1, {"val_loss": 0.2})
    best_bytes = (tmp_path / "best.keras").read_bytes()
    # A new process resumes after epoch 2; its history lost the rows (a kill between writes).
    carried = carried_best(run, "val_loss", False, start_epoch=2, earlier_rows=[])
    assert carried == 0.2
    resumed = best_class(run, "val_loss", False, carried, guard_class())
    resumed.set_model(_tiny_model())
    resumed.on_epoch_end(2, {"val_loss": 0.3})  # worse than epoch 2: kept out
    assert (tmp_path / "best.keras").read_bytes() == best_bytes
    assert rd.read_best(run)["epoch"] == 2
    resumed.on_epoch_end(3, {"val_loss": 0.1})
    assert rd.read_best(run) == {"monitor": "val_loss", "value": 0.1, "epoch": 4, "higher_is_better": False}


# --- NaN ---------------------------------------------------------------------------------------


def _explode_in_epoch(epoch_number: int):
    import keras

    class Explode(keras.callbacks.Callback):
        """Sets a learning rate that sends the weights to inf in the given epoch."""

        def on_epoch_begin(self, epoch, logs=None):
            if epoch + 1 == epoch_number:
                self.model.optimizer.learning_rate.assign(1e30)

    return Explode()


def test_a_nan_loss_stops_the_run_with_exit_3_and_keeps_the_last_good_checkpoint(tmp_path):
    import keras

    from kbuilder.train import TrainOptions, train

    loaded = load_spec(
        write_spec(tmp_path), overrides=["train.epochs=4", "train.data.limit=400", "train.data.test_limit=50"]
    )
    options = TrainOptions(
        data_dir=DATASETS,
        out=tmp_path / "run",
        backend=current_backend(),
        verbose=0,
        export=False,
        extra_callbacks=[_explode_in_epoch(2)],
    )
    with pytest.raises(RuntimeFailure, match=r"diverged: the loss became (nan|inf) at epoch 2") as caught:
        train(loaded, options)
    assert caught.value.exit_code == 3
    message = str(caught.value)
    assert "best.keras (epoch 1" in message and "backup after epoch 1" in message, message
    run = tmp_path / "run"
    assert rd.read_best(rd.RunDir(run))["epoch"] == 1
    best = keras.saving.load_model(run / "best.keras")
    assert all(np.isfinite(w).all() for w in best.get_weights())
    assert json.loads((run / "backup" / "training_metadata.json").read_text())["epoch"] == 1
    assert not (run / "metrics.json").exists() and not (run / "last.keras").exists()


KILLED_WRITER = r"""
import sys, time
from pathlib import Path
from kbuilder.storage import rundir as rd

class SlowModel:
    def save(self, path):
        with open(path, "wb") as handle:
            handle.write(b"PK\x03\x04 half a zip")
            handle.flush()
        print("writing", flush=True)
        time.sleep(600)

rd.save_model(SlowModel(), Path(sys.argv[1]))
"""


@pytest.mark.subprocess
def test_a_sigkill_while_best_keras_is_written_leaves_the_previous_one(tmp_path):
    """A real SIGKILL in the middle of the write: best.keras is the previous, complete file
    (never 0 bytes), and the temporary file the killed process left is removed on the rerun."""
    import signal
    import subprocess
    import sys

    from tests.test_train_support import REPO_ROOT

    run = rd.open_run_dir("tiny_mlp", tmp_path / "run", resolved=RESOLVED)
    run.release()
    best = tmp_path / "run" / "best.keras"
    best.write_bytes(b"the previous best model")
    writer = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(best)],
        stdout=subprocess.PIPE,
        text=True,
        env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"},
    )
    try:
        assert writer.stdout.readline().strip() == "writing"
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=30)
    finally:
        if writer.poll() is None:
            writer.kill()
    assert best.read_bytes() == b"the previous best model"
    leftovers = [p.name for p in (tmp_path / "run").iterdir() if p.name.startswith(".tmp-")]
    assert len(leftovers) == 1 and leftovers[0].startswith(".tmp-best.keras."), leftovers
    rd.open_run_dir("tiny_mlp", tmp_path / "run", resolved=RESOLVED).release()
    assert not [p for p in (tmp_path / "run").iterdir() if p.name.startswith(".tmp-")]


def test_a_full_disk_in_the_middle_of_a_training_stops_it_with_exit_3_and_keeps_the_checkpoints(
    tmp_path, monkeypatch
):
    import keras

    from kbuilder.train import TrainOptions, train

    real_save, calls = keras.Model.save, []

    def save_until_the_disk_fills(self, filepath, *args, **kwargs):
        calls.append(filepath)
        if len(calls) == 2:  # the second best.keras
            return _full_disk_after(10)(self, filepath)
        return real_save(self, filepath, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "save", save_until_the_disk_fills)
    loaded = load_spec(
        write_spec(tmp_path),
        overrides=[
            "train.epochs=3",
            "train.data.limit=400",
            "train.data.test_limit=50",
            "train.callbacks=[{type: model_checkpoint, monitor: loss}]",
        ],
    )
    with pytest.raises(
        RuntimeFailure, match=r"best.keras: the disk is full; the previous best.keras is kept.*same command"
    ) as caught:
        train(
            loaded,
            TrainOptions(
                data_dir=DATASETS, out=tmp_path / "run", backend=current_backend(), verbose=0, export=False
            ),
        )
    assert caught.value.exit_code == 3
    monkeypatch.undo()
    run = tmp_path / "run"
    assert rd.read_best(rd.RunDir(run))["epoch"] == 1
    assert keras.saving.load_model(run / "best.keras").count_params() > 0
    assert rd.RunDir(run).resume_epoch() == 2  # the backup of the epoch whose checkpoint failed is there
    assert not [p for p in run.iterdir() if p.name.startswith(".tmp-")]
