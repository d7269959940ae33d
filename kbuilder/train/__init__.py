"""Training: `kbuilder train` and `kbuilder.train.train(loaded, TrainOptions(...))`.

Importing this package is cheap: `train` selects the backend, and only then imports the
stages, which import Keras (kbuilder/train/run.py lists them).
"""

from __future__ import annotations

from kbuilder.train.options import TrainOptions, TrainResult
from kbuilder.train.runner import train

__all__ = ["TrainOptions", "TrainResult", "train"]
