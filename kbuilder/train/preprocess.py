"""Preprocessing applied once to every split (numpy), and the data-vs-model shape checks.

Doing it once on the arrays, instead of per batch in the pipeline, is what "cache where it
fits" means here: the preprocessed arrays are the cache.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

import keras
import numpy as np

from kbuilder.errors import DataError
from kbuilder.train.data import Arrays, Splits

CATEGORICAL_LOSSES = ("categorical_crossentropy", "kl_divergence")
_RESIZE_CHUNK = 2048


@dataclass
class Statistics:
    """Values computed from the training data (normalize without explicit mean/std), and what
    the raw inputs were before preprocessing (the contract `kbuilder predict` and exports keep)."""

    normalize: list[dict] = field(default_factory=list)
    raw_input: dict | None = None


def describe_raw(x: np.ndarray) -> dict:
    """dtype, per-sample shape and value range of the inputs as the data source delivers them."""
    numeric = np.issubdtype(x.dtype, np.number) and x.size
    return {
        "dtype": str(x.dtype),
        "shape": [int(d) for d in x.shape[1:]],
        "range": [float(np.min(x)), float(np.max(x))] if numeric else None,
    }


def _spatial(x: np.ndarray, what: str) -> None:
    if x.ndim not in (3, 4):
        raise DataError(
            f"{what} needs images shaped [N, height, width] or [N, height, width, channels], got {tuple(x.shape)}"
        )


def _pad(x: np.ndarray, step) -> np.ndarray:
    _spatial(x, "pad")
    p = step.padding if isinstance(step.padding, list) else [step.padding]
    if len(p) == 1:
        top = bottom = left = right = p[0]
    elif len(p) == 2:
        top = bottom = p[0]
        left = right = p[1]
    else:
        top, bottom, left, right = p
    widths = [(0, 0), (top, bottom), (left, right)] + [(0, 0)] * (x.ndim - 3)
    return np.pad(x, widths, constant_values=step.value)


def _resize(x: np.ndarray, step) -> np.ndarray:
    _spatial(x, "resize")
    squeeze = x.ndim == 3
    images = x[..., None] if squeeze else x
    parts = [
        keras.ops.convert_to_numpy(
            keras.ops.image.resize(
                images[i : i + _RESIZE_CHUNK], tuple(step.size), interpolation=step.interpolation
            )
        )
        for i in range(0, len(images), _RESIZE_CHUNK)
    ]
    out = np.concatenate(parts).astype("float32")
    return out[..., 0] if squeeze else out


def _normalize(x: np.ndarray, step, stats: dict | None) -> tuple[np.ndarray, dict]:
    if stats is None:
        axes = tuple(range(x.ndim - 1)) if x.ndim > 2 else (0,) if x.ndim == 2 else None
        if x.ndim == 3:  # [N, H, W] grayscale: one channel, statistics over everything
            axes = None
        mean = step.mean if step.mean is not None else np.mean(x, axis=axes, dtype="float64")
        std = step.std if step.std is not None else np.std(x, axis=axes, dtype="float64")
        stats = {
            "mean": np.asarray(mean, dtype="float32").tolist(),
            "std": np.maximum(np.asarray(std, dtype="float32"), 1e-7).tolist(),
        }
    mean, std = np.asarray(stats["mean"], "float32"), np.asarray(stats["std"], "float32")
    if mean.ndim and x.ndim and mean.shape[-1] not in (1, x.shape[-1]):
        raise DataError(f"normalize: {mean.shape[-1]} channel means for data with {x.shape[-1]} channels")
    return (x - mean) / std, stats


def preprocess_splits(
    splits: Splits, steps: list, *, num_classes: int | None, loss_name: str
) -> tuple[Splits, Statistics]:
    """Apply the spec's steps to every split; statistics come from the training split."""
    statistics = Statistics(raw_input=describe_raw(splits.train.x))
    parts = {"train": splits.train, "validation": splits.validation, "test": splits.test}
    out = {
        name: (
            Arrays(a.x.astype("float32") if np.issubdtype(a.x.dtype, np.number) else a.x, a.y)
            if a is not None
            else None
        )
        for name, a in parts.items()
    }
    one_hot_done = False
    for step in steps:
        stats = None
        for name in ("train", "validation", "test"):
            arrays = out[name]
            if arrays is None:
                continue
            x, stats = transform(arrays.x, step, stats)
            y = one_hot(arrays.y, step.num_classes or num_classes) if step.type == "one_hot" else arrays.y
            out[name] = Arrays(x, y)
        if step.type == "normalize" and stats is not None:
            statistics.normalize.append(stats)
        one_hot_done = one_hot_done or step.type == "one_hot"
    train = cast(Arrays, out["train"])  # the training split is never absent
    if loss_name in CATEGORICAL_LOSSES and not one_hot_done and _class_ids(train.y):
        out = {n: (Arrays(a.x, one_hot(a.y, num_classes)) if a is not None else None) for n, a in out.items()}
        train = cast(Arrays, out["train"])
    return Splits(train, out["validation"], out["test"], splits.origin), statistics


def transform(x: np.ndarray, step, stats: dict | None) -> tuple[np.ndarray, dict | None]:
    """One step on the inputs (labels are one_hot's); `stats` are a normalize step's mean/std
    (None: computed from `x`, which is how the training split gives them to the others)."""
    if step.type == "rescale":
        x = x * np.float32(step.scale) + np.float32(step.offset)
    elif step.type == "normalize":
        x, stats = _normalize(x, step, stats)
    elif step.type == "pad":
        x = _pad(x, step)
    elif step.type == "resize":
        x = _resize(x, step)
    elif step.type == "add_channel_axis":
        x = x[..., None]
    elif step.type == "reshape":
        try:
            x = x.reshape((len(x), *step.shape))
        except ValueError as exc:
            raise DataError(f"reshape to {step.shape}: {exc}") from None
    return x, stats


def preprocess_inputs(x: np.ndarray, steps: list, normalize_statistics: list[dict]) -> np.ndarray:
    """Raw inputs through the spec's steps exactly as training preprocessed its splits, each
    normalize step with the statistics training recorded (metrics.json's normalize_statistics)."""
    x = x.astype("float32") if np.issubdtype(x.dtype, np.number) else x
    recorded = iter(normalize_statistics)
    for step in steps:
        stats = None
        if step.type == "normalize":
            stats = next(recorded, None)
            if stats is None:
                raise DataError(
                    "the run recorded no statistics for its normalize step (metrics.json "
                    "data.normalize_statistics); it cannot be preprocessed as it was trained"
                )
        x, _ = transform(x, step, stats)
    return x


def _class_ids(y: np.ndarray) -> bool:
    return y.ndim == 1 and np.issubdtype(y.dtype, np.integer)


def one_hot(y: np.ndarray, num_classes: int | None) -> np.ndarray:
    if not _class_ids(y):
        raise DataError(
            f"one-hot encoding needs integer class ids shaped [N], got {y.dtype} {tuple(y.shape)}"
        )
    classes = num_classes or int(y.max()) + 1
    if len(y) and (y.min() < 0 or y.max() >= classes):
        raise DataError(f"labels run from {y.min()} to {y.max()} but there are {classes} classes")
    return np.eye(classes, dtype="float32")[y]


def _fits(data_shape: tuple, model_shape: tuple) -> bool:
    return len(data_shape) == len(model_shape) and all(
        m is None or m == d for d, m in zip(data_shape, model_shape)
    )


def check_against_model(
    splits: Splits, *, input_name: str, input_shape: tuple, output_shape: tuple, loss_name: str
) -> None:
    """Refuse data that cannot feed the model, naming both shapes (before anything trains)."""
    for split, arrays in (
        ("training", splits.train),
        ("validation", splits.validation),
        ("test", splits.test),
    ):
        if arrays is None:
            continue
        sample = tuple(int(d) for d in arrays.x.shape[1:])
        if not _fits(sample, tuple(input_shape)):
            hint = ""
            if len(sample) + 1 == len(input_shape) and input_shape[-1] == 1:
                hint = " (add `{type: add_channel_axis}` to train.data.preprocess)"
            elif len(sample) == len(input_shape) and sample[-1:] == tuple(input_shape[-1:]):
                hint = " (pad or resize it in train.data.preprocess)"
            raise DataError(
                f"the {split} data has samples of shape {sample} but the model input '{input_name}' "
                f"expects {tuple(input_shape)}{hint}"
            )
        _check_labels(split, arrays.y, tuple(output_shape), loss_name)


def _check_labels(split: str, y: np.ndarray, output_shape: tuple, loss_name: str) -> None:
    width = output_shape[-1] if output_shape else None
    if loss_name == "sparse_categorical_crossentropy":
        if not (y.ndim == 1 and np.issubdtype(y.dtype, np.integer)):
            raise DataError(
                f"sparse_categorical_crossentropy needs integer class ids shaped [N]; the {split} labels are {y.dtype} {tuple(y.shape)}"
            )
        if width is not None and len(y) and (y.min() < 0 or y.max() >= width):
            raise DataError(
                f"the {split} labels run from {y.min()} to {y.max()} but the model has {width} outputs"
            )
    elif (
        loss_name in CATEGORICAL_LOSSES
        and y.shape[1:] != tuple(output_shape)
        or loss_name == "binary_crossentropy"
        and width is not None
        and y.shape[1:] not in ((), (width,))
    ):
        raise DataError(
            f"the {split} labels have shape {tuple(y.shape[1:])} per sample but the model outputs {output_shape}"
        )
    if loss_name == "binary_crossentropy" and len(y) and (y.min() < 0 or y.max() > 1):
        raise DataError(
            f"binary_crossentropy needs labels between 0 and 1; the {split} labels run from {y.min()} to {y.max()}"
        )
