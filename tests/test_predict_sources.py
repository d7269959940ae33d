"""Predicting with models trained on an image folder and with a resize step: class names from
the folder names, the spec's `train.data.classes` checked against the outputs, and images of
other sizes resized by the source (an image folder) or by the preprocessing."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import kbuilder.api as kb
from kbuilder.errors import DataError
from tests.test_train_support import write_spec

pytestmark = pytest.mark.slow

FOLDER_MODEL = """
name: folder
inputs:
  image: {shape: [28, 28, 1]}
layers:
  - flatten: {}
  - dense: {units: 2}
"""


def _image_folder(root):
    rng = np.random.default_rng(0)
    for label, level in (("dark", 40), ("light", 210)):
        (root / label).mkdir(parents=True)
        for i in range(8):
            pixels = np.clip(rng.normal(level, 10, (28, 28)), 0, 255).astype("uint8")
            Image.fromarray(pixels).save(root / label / f"{i}.png")


def _folder_overrides(extra=()):
    return [
        "train.epochs=5",
        "train.batch_size=4",
        "train.data.validation={type: none}",
        "train.data.source={type: image_folder, directory: images}",
        "train.data.preprocess=[{type: rescale, scale: 0.00392156862745098}]",
        "train.optimizer.learning_rate=0.05",
        *extra,
    ]


def test_an_image_folder_run_names_its_classes_and_resizes_like_its_source(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _image_folder(tmp_path / "images")
    spec = write_spec(tmp_path, model=FOLDER_MODEL)
    run = kb.train(spec, _folder_overrides(), out=tmp_path / "run", verbose=0)
    contract = run.metrics["data"]["input_contract"]
    assert contract["class_names"] == ["dark", "light"]
    assert contract["raw_input"]["dtype"] == "float32" and contract["raw_input"]["shape"] == [28, 28, 1]
    assert contract["output"]["to_probabilities"] == "softmax"  # dense without activation: logits
    Image.new("RGB", (56, 40), (230, 230, 230)).save(tmp_path / "big_light.png")  # another size, RGB
    result = kb.predict(tmp_path / "run", [tmp_path / "big_light.png"], top_k=2)
    assert result["top"][0]["top"][0]["class_name"] == "light"
    assert result["probabilities"].sum() == pytest.approx(1.0)


def test_class_names_must_match_the_output_units(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _image_folder(tmp_path / "images")
    spec = write_spec(tmp_path, model=FOLDER_MODEL)
    with pytest.raises(DataError, match="names 3 classes but the model has 2 output units"):
        kb.train(spec, _folder_overrides(["train.data.classes=[a, b, c]"]), out=tmp_path / "run", verbose=0)
    run = kb.train(
        spec, _folder_overrides(["train.data.classes=[night, day]"]), out=tmp_path / "ok", verbose=0
    )
    assert run.metrics["data"]["class_names"] == ["night", "day"]


def test_a_resize_step_takes_images_of_any_size(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (40, 12, 12)).astype("uint8")
    y = (x.mean(axis=(1, 2)) > 127).astype("int64")
    np.savez(tmp_path / "data.npz", x_train=x, y_train=y, x_test=x[:8], y_test=y[:8])
    model = """
    name: resized
    inputs:
      image: {shape: [8, 8, 1]}
    layers:
      - flatten: {}
      - dense: {units: 2, activation: softmax}
    """
    spec = write_spec(tmp_path, model=model)
    overrides = [
        "train.epochs=1",
        "train.data.validation={type: none}",
        "train.data.source={type: npz, path: data.npz}",
        "train.data.preprocess=[{type: add_channel_axis}, {type: resize, size: [8, 8]}, {type: normalize}]",
    ]
    kb.train(spec, overrides, out=tmp_path / "run", verbose=0)
    Image.fromarray(x[0]).save(tmp_path / "same.png")
    Image.fromarray(x[0]).resize((20, 20)).save(tmp_path / "other.png")
    result = kb.predict(
        tmp_path / "run", [tmp_path / "same.png", tmp_path / "other.png", tmp_path / "data.npz"]
    )
    assert result["probabilities"].shape == (2 + 8, 2)
    np.testing.assert_allclose(result["probabilities"][0], result["probabilities"][2], atol=1e-6)
