"""Shared pieces of the training tests: the real MNIST file from ../shared/datasets and small specs."""

from __future__ import annotations

import textwrap
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DATASETS = (REPO_ROOT / "../shared/datasets").resolve()

MLP_MODEL = """
name: tiny_mlp
inputs:
  image: {shape: [28, 28]}
layers:
  - flatten: {name: flatten}
  - dense: {name: hidden, units: 32, activation: relu}
  - dense: {name: logits, units: 10}
"""

TRAIN_SECTION = """
train:
  data:
    source: {type: keras, name: mnist}
    limit: 1200
    test_limit: 300
    validation: {type: split, fraction: 0.2}
    preprocess:
      - {type: rescale, scale: 0.00784313725490196, offset: -1.0}
  optimizer: {type: sgd, learning_rate: 0.01, momentum: 0.9}
  loss: sparse_categorical_crossentropy
  epochs: 3
  batch_size: 32
  seed: 3
  performance: {steps_per_execution: 8}
"""


def write_spec(
    directory: Path, train: str = TRAIN_SECTION, model: str = MLP_MODEL, name: str = "tiny.yaml"
) -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(model) + textwrap.dedent(train))
    return path


def current_backend() -> str:
    """The backend this test process already runs on (Keras cannot switch in one process)."""
    from kbuilder.backend import active_backend

    return active_backend() or "tensorflow"


def test_the_real_mnist_file_is_there():
    assert (DATASETS / "mnist.npz").is_file(), (
        f"tests need {DATASETS / 'mnist.npz'} (see shared/datasets/README.md)"
    )
