"""Calibration samples for int8 quantization: real inputs of the spec's `train.data`,
preprocessed exactly as training feeds them.

The TFLite converter needs a few hundred representative inputs to choose each activation's
int8 range. They come from the data loader (read only: nothing is cached or written), so
they live beside it in `train`; `kbuilder.export` takes the arrays and never loads data.
"""

from __future__ import annotations

import os

import numpy as np

from kbuilder.errors import UsageError
from kbuilder.spec import LoadedSpec
from kbuilder.train.data import data_directory, load_splits
from kbuilder.train.preprocess import preprocess_splits

CALIBRATION_SAMPLES = 200  # TensorFlow's guidance: a few hundred representative samples


def spec_samples(
    loaded: LoadedSpec,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    split: str = "train",
    limit: int = CALIBRATION_SAMPLES,
) -> tuple[np.ndarray, np.ndarray]:
    """Up to `limit` samples (x, y) of the spec's `train.data` `split`, preprocessed as
    training feeds them, in their data set order (a seeded choice): int8 calibration data.

    UsageError when the spec has no train section, more than one input, or no such split."""
    spec = loaded.spec
    if spec.train is None:
        raise UsageError(
            f"int8 quantization is calibrated on the spec's train.data, and "
            f"'{spec.name}' has no train section; use --quantize float16 or none"
        )
    if len(spec.inputs) != 1:
        raise UsageError(
            f"int8 calibration feeds models with one input; '{spec.name}' has {len(spec.inputs)}"
        )
    input_spec = next(iter(spec.inputs.values()))
    spec_dir = loaded.path.parent if loaded.path is not None else None
    splits = load_splits(
        spec.train.data,
        spec_dir=spec_dir,
        data_dir=data_directory(data_dir),
        input_shape=tuple(input_spec.shape),
        seed=spec.train.seed,
    )
    loss = spec.train.loss  # a name is validated into a LossSpec; the type admits both
    loss_name = loss if isinstance(loss, str) else loss.name
    splits, _ = preprocess_splits(splits, spec.train.data.preprocess, num_classes=None, loss_name=loss_name)
    arrays = getattr(splits, split)
    if arrays is None:
        raise UsageError(f"the spec's data has no {split} split")
    order = np.random.default_rng(0).permutation(len(arrays))[:limit]
    return arrays.x[np.sort(order)].astype(input_spec.dtype), arrays.y[np.sort(order)]
