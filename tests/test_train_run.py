"""Short real trainings on a slice of MNIST: the loss falls and the run directory is complete."""

from __future__ import annotations

import json

import pytest

from kbuilder.errors import DataError
from kbuilder.spec import load_spec
from tests.test_train_support import DATASETS, current_backend, write_spec

pytestmark = pytest.mark.slow


def _train(spec_path, out, overrides=(), **options):
    from kbuilder.train import TrainOptions, train

    loaded = load_spec(spec_path, overrides=list(overrides))
    return train(
        loaded, TrainOptions(data_dir=DATASETS, out=out, backend=current_backend(), verbose=0, **options)
    )


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    directory = tmp_path_factory.mktemp("run")
    spec = write_spec(directory)
    return _train(spec, directory / "out", overrides=["train.epochs=3"])


def test_the_loss_falls(finished_run):
    losses = [row["loss"] for row in finished_run.history]
    assert len(losses) == 3
    assert losses[-1] < losses[0] * 0.7, losses
    assert finished_run.metrics["test_accuracy"] > 0.6


def test_the_run_directory_has_every_file(finished_run):
    run = finished_run.run_dir
    for name in (
        "spec.yaml",
        "history.csv",
        "history.json",
        "metrics.json",
        "best.keras",
        "last.keras",
        "curves.png",
    ):
        assert (run / name).is_file(), name
    assert (run / "export" / "saved_model" / "saved_model.pb").is_file()
    assert (run / "export" / "manifest.json").is_file()
    # A default install (tensorboard is a core dependency) writes TensorBoard logs (issue 12).
    from kbuilder.backend import tensorboard_available

    assert tensorboard_available(), "tensorflow and tensorboard are core dependencies"
    events = list((run / "logs").rglob("events.out.tfevents.*"))
    assert {e.parent.name for e in events} >= {"train", "validation"}, events
    assert finished_run.metrics["tensorboard"] == str(run / "logs")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run / "logs" / "train"))
    events.Reload()
    assert "epoch_loss" in events.Tags()["tensors"], events.Tags()
    assert [e.step for e in events.Tensors("epoch_loss")] == [0, 1, 2]
    assert not (run / "backup").exists(), "the backup of a finished run is removed"
    assert (run / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_metrics_have_stable_keys(finished_run):
    metrics = json.loads((finished_run.run_dir / "metrics.json").read_text())
    for key in (
        "test_accuracy",
        "test_loss",
        "train_loss",
        "val_loss",
        "val_accuracy",
        "train_seconds",
        "epoch_seconds",
        "samples_per_second",
        "backend",
        "device",
    ):
        assert key in metrics, key
    assert len(metrics["epoch_seconds"]) == 3
    assert metrics["backend"] == current_backend()
    assert metrics["data"]["train_samples"] == 960 and metrics["data"]["validation_samples"] == 240
    assert metrics["data"]["test_samples"] == 300


def test_history_files_agree(finished_run):
    rows = json.loads((finished_run.run_dir / "history.json").read_text())
    csv_lines = (finished_run.run_dir / "history.csv").read_text().strip().splitlines()
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert len(csv_lines) == 4 and "val_loss" in csv_lines[0]
    assert [line.split(",")[0] for line in csv_lines] == ["epoch", "1", "2", "3"]  # as history.json


def test_the_resolved_spec_is_saved_and_reloads(finished_run):
    import yaml

    resolved = yaml.safe_load((finished_run.run_dir / "spec.yaml").read_text())
    assert resolved["train"]["epochs"] == 3  # the override
    assert resolved["train"]["performance"]["eval_batch_size"] == 1024  # a default, filled in
    assert load_spec(finished_run.run_dir / "spec.yaml").spec.train.epochs == 3


def test_saved_models_reload_and_predict(finished_run):
    import keras
    import numpy as np

    model = keras.saving.load_model(finished_run.run_dir / "last.keras")
    assert model.predict(np.zeros((2, 28, 28), "float32"), verbose=0).shape == (2, 10)


def test_a_data_shape_the_model_cannot_take_is_refused_before_training(tmp_path):
    model = """
    name: wants_channels
    inputs:
      image: {shape: [32, 32, 1]}
    layers:
      - flatten: {}
      - dense: {units: 10}
    """
    spec = write_spec(tmp_path, model=model)
    with pytest.raises(DataError) as caught:
        _train(spec, tmp_path / "out")
    message = str(caught.value)
    assert "(28, 28)" in message and "(32, 32, 1)" in message, message
    assert not (tmp_path / "out" / "history.json").exists()


def test_preprocessing_pads_and_adds_channels(tmp_path):
    model = """
    name: padded
    inputs:
      image: {shape: [32, 32, 1]}
    layers:
      - conv2d: {filters: 4, kernel_size: 5, activation: tanh}
      - average_pooling2d: {pool_size: 4}
      - flatten: {}
      - dense: {units: 10}
    """
    spec = write_spec(tmp_path, model=model)
    run = _train(
        spec,
        tmp_path / "out",
        overrides=[
            "train.epochs=1",
            "train.data.limit=256",
            "train.data.test_limit=64",
            "train.data.validation={type: none}",
            "train.data.preprocess=[{type: rescale, scale: 0.00392156862745098}, {type: pad, padding: 2}, {type: add_channel_axis}]",
            "train.data.augment=[{type: random_translation, height_factor: 0.05, width_factor: 0.05}]",
            "train.optimizer={type: adam, schedule: {type: cosine, warmup_epochs: 0.5}}",
        ],
        export=False,
    )
    assert run.metrics["epochs_run"] == 1 and run.metrics["test_loss"] > 0
    settings = run.metrics["settings"]
    if settings["backend"] == "tensorflow":  # conftest turns oneDNN on unless TF_ENABLE_ONEDNN_OPTS=0
        from kbuilder.backend import onednn_enabled

        # A small convolutional model on a CPU trains with oneDNN kernels, without XLA; with
        # oneDNN off (the user's choice) XLA stays on.
        assert settings["onednn"] is onednn_enabled(), settings
        assert settings["jit_compile"] is not settings["onednn"], settings


def test_inline_xor_table_trains(tmp_path):
    model = """
    name: xor
    inputs:
      x: {shape: [2]}
    layers:
      - dense: {units: 8, activation: tanh}
      - dense: {units: 1, activation: sigmoid}
    """
    train = """
    train:
      data:
        source: {type: inline, x: [[0, 0], [0, 1], [1, 0], [1, 1]], y: [0, 1, 1, 0]}
        validation: {type: none}
      optimizer: {type: adam, learning_rate: 0.1}
      loss: binary_crossentropy
      epochs: 2
      batch_size: 4
      callbacks: [{type: tensorboard, enabled: false}]
    """
    run = _train(write_spec(tmp_path, train=train, model=model), tmp_path / "out", export=False)
    assert run.metrics["settings"]["batch_size"] == 4
    assert not (run.run_dir / "logs").exists()


def test_metrics_say_which_epoch_the_test_figures_and_export_come_from(finished_run):
    weights = json.loads((finished_run.run_dir / "metrics.json").read_text())["weights"]
    best = json.loads((finished_run.run_dir / "best.json").read_text())
    assert weights["from"] == "last" and weights["epoch"] == 3
    assert weights["best_keras_epoch"] == best["epoch"]
    assert "export" in weights["used_for"] and "test_" in weights["used_for"]


def test_a_finished_run_keeps_no_lock_file(finished_run):
    assert not (finished_run.run_dir / ".kbuilder-lock").exists()


def test_early_stopping_that_went_back_to_its_best_epoch_is_named(tmp_path):
    """When early stopping restored its best epoch's weights, the test figures and the export
    come from that epoch, and metrics.json says so (not "the last")."""
    from types import SimpleNamespace

    import keras

    from kbuilder.storage.rundir import RunDir
    from kbuilder.train.report import weights_used

    stopper = keras.callbacks.EarlyStopping(monitor="val_loss", restore_best_weights=True)
    stopper.best_weights, stopper.best_epoch = [], 1  # Keras counts from 0: epoch 2
    rows = [{"epoch": e} for e in (1, 2, 3, 4)]
    run = SimpleNamespace(
        recorder=SimpleNamespace(rows=rows), callbacks=[stopper], run_dir=RunDir(tmp_path), start_epoch=0
    )
    assert weights_used(run)["from"] == "best" and weights_used(run)["epoch"] == 2
    stopper.restore_best_weights = False
    assert weights_used(run)["from"] == "last" and weights_used(run)["epoch"] == 4
