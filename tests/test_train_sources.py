"""Data sources other than the Keras data sets, and the learning-rate schedules."""

from __future__ import annotations

import numpy as np
import pytest

from kbuilder.spec import load_spec
from tests.test_train_support import DATASETS, current_backend, write_spec

pytestmark = pytest.mark.slow


def _train(spec_path, out, overrides=()):
    from kbuilder.train import TrainOptions, train

    return train(
        load_spec(spec_path, overrides=list(overrides)),
        TrainOptions(data_dir=DATASETS, out=out, backend=current_backend(), verbose=0, export=False),
    )


def test_npy_files_with_a_separate_validation_source(tmp_path):
    with np.load(DATASETS / "mnist.npz") as mnist:
        np.save(tmp_path / "x.npy", mnist["x_train"][:300])
        np.save(tmp_path / "y.npy", mnist["y_train"][:300])
        np.savez(tmp_path / "val.npz", x_train=mnist["x_test"][:100], y_train=mnist["y_test"][:100])
    spec = write_spec(tmp_path)
    run = _train(
        spec,
        tmp_path / "out",
        [
            "train.epochs=1",
            "train.data.source={type: npy, x: x.npy, y: y.npy}",
            "train.data.validation={type: source, source: {type: npz, path: val.npz}}",
        ],
    )
    assert run.metrics["data"]["train_samples"] == 300 and run.metrics["data"]["validation_samples"] == 100
    assert "val_loss" in run.history[0] and "test_loss" not in run.metrics


def test_an_image_folder(tmp_path):
    import keras

    rng = np.random.default_rng(0)
    for label in ("dark", "light"):
        (tmp_path / "images" / label).mkdir(parents=True)
        for i in range(6):
            level = 40 if label == "dark" else 210
            pixels = np.clip(rng.normal(level, 10, (28, 28, 1)), 0, 255).astype("uint8")
            keras.utils.save_img(tmp_path / "images" / label / f"{i}.png", pixels)
    spec = write_spec(
        tmp_path,
        model="""
    name: folder
    inputs:
      image: {shape: [28, 28, 1]}
    layers:
      - flatten: {}
      - dense: {units: 2}
    """,
    )
    run = _train(
        spec,
        tmp_path / "out",
        [
            "train.epochs=2",
            "train.batch_size=4",
            "train.data.validation={type: none}",
            "train.data.source={type: image_folder, directory: images}",
            "train.data.preprocess=[{type: rescale, scale: 0.00392156862745098}]",
        ],
    )
    assert run.metrics["data"]["train_samples"] == 12


@pytest.mark.parametrize(
    "schedule, expected",
    [
        ({"type": "step", "every_epochs": 2, "factor": 0.5}, [0.1, 0.1, 0.05, 0.05, 0.025]),
        (
            {"type": "piecewise", "boundaries": [1, 3], "factors": [1, 0.1, 0.01]},
            [0.1, 0.1, 0.01, 0.01, 0.001],
        ),
        (
            {"type": "exponential", "decay_rate": 0.5, "decay_epochs": 1, "staircase": True},
            [0.1, 0.05, 0.025, 0.0125, 0.00625],
        ),
        ({"type": "cosine", "alpha": 0.0}, [0.1, 0.0904508, 0.0654508, 0.0345492, 0.0095492]),
        (
            {"type": "step", "every_epochs": 1, "factor": 0.5, "warmup_epochs": 2},
            [0.0, 0.05, 0.1, 0.05, 0.025],
        ),
    ],
)
def test_schedules_count_in_epochs(schedule, expected):
    import keras

    from kbuilder.spec.train.optim import SGD
    from kbuilder.train.compile import learning_rate

    steps_per_epoch = 10
    rate = learning_rate(
        SGD(type="sgd", learning_rate=0.1, schedule=schedule), steps_per_epoch=steps_per_epoch, epochs=5
    )
    got = [float(keras.ops.convert_to_numpy(rate(epoch * steps_per_epoch))) for epoch in range(5)]
    assert got == pytest.approx(expected, rel=1e-4, abs=1e-7)


def test_a_warmup_schedule_survives_saving(tmp_path):
    spec = write_spec(tmp_path)
    run = _train(
        spec,
        tmp_path / "out",
        [
            "train.epochs=1",
            "train.data.limit=200",
            "train.optimizer.schedule={type: exponential, decay_rate: 0.9, warmup_epochs: 0.5}",
        ],
    )
    import keras

    reloaded = keras.saving.load_model(run.run_dir / "last.keras")
    assert reloaded.optimizer.learning_rate is not None
