"""An interrupted run, started again, continues from the epoch it saved (API and CLI)."""

from __future__ import annotations

import json

import pytest

from kbuilder.errors import Interrupted
from kbuilder.spec import load_spec
from tests.test_train_support import DATASETS, current_backend, write_spec

pytestmark = pytest.mark.slow

EPOCHS = 4
STOP_AFTER = 2


def _interrupt_after(epochs_done: int):
    import keras

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch + 1 == epochs_done:
                raise KeyboardInterrupt  # what Ctrl-C does in the middle of a run

    return Interrupt()


def _options(out, **kwargs):
    from kbuilder.train import TrainOptions

    return TrainOptions(
        data_dir=DATASETS, out=out, backend=current_backend(), verbose=0, export=False, **kwargs
    )


@pytest.fixture(scope="module")
def spec_file(tmp_path_factory):
    return write_spec(tmp_path_factory.mktemp("resume"))


@pytest.fixture(scope="module")
def interrupted(spec_file, tmp_path_factory):
    from kbuilder.train import train

    out = tmp_path_factory.mktemp("interrupted") / "run"
    loaded = load_spec(spec_file, overrides=[f"train.epochs={EPOCHS}"])
    with pytest.raises(Interrupted, match="epoch 2 of 4 saved.*run the same command to resume"):
        train(loaded, _options(out, extra_callbacks=[_interrupt_after(STOP_AFTER)]))
    return out


def test_an_interrupted_run_keeps_its_backup(interrupted):
    meta = json.loads((interrupted / "backup" / "training_metadata.json").read_text())
    assert meta["epoch"] == STOP_AFTER
    assert [r["epoch"] for r in json.loads((interrupted / "history.json").read_text())] == [1, 2]


def test_starting_again_continues_from_the_saved_epoch(interrupted, spec_file, tmp_path):
    from kbuilder.train import train

    resumed = train(load_spec(interrupted / "spec.yaml"), _options(interrupted))
    assert resumed.metrics["resumed_after_epoch"] == STOP_AFTER
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3, 4]
    assert len(resumed.metrics["epoch_seconds"]) == EPOCHS - STOP_AFTER
    assert not (interrupted / "backup").exists()
    csv_rows = (interrupted / "history.csv").read_text().strip().splitlines()
    assert len(csv_rows) == 1 + EPOCHS

    # The same run without the interruption reaches the same figures: weights, optimizer
    # state and the data order all carried over.
    straight = train(
        load_spec(spec_file, overrides=[f"train.epochs={EPOCHS}"]), _options(tmp_path / "straight")
    )
    for before, after in zip(straight.history, resumed.history):
        assert after["loss"] == pytest.approx(before["loss"], rel=1e-4), (straight.history, resumed.history)


def test_the_cli_resumes_a_run_directory(spec_file, tmp_path):
    from kbuilder.train import train

    out = tmp_path / "run"
    loaded = load_spec(spec_file, overrides=["train.epochs=3"])
    with pytest.raises(Interrupted):
        train(loaded, _options(out, extra_callbacks=[_interrupt_after(1)]))
    from tests.test_train_cli import run_cli

    code, stdout, _ = run_cli(
        ["train", "--resume", str(out), "--data-dir", str(DATASETS), "--no-export", "--json"]
    )
    assert code == 0, stdout
    report = json.loads(stdout)
    assert report["resumed_after_epoch"] == 1 and report["epochs_run"] == 3
