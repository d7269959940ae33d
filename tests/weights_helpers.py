"""Small specs and weights files the weights tests share (no Keras imported here)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np

# Plain layers, a residual composite (its conv is `res-c2`) and a Keras layer made of
# sublayers (multi-head attention: query/key/value/output).
TINY = """
name: tiny
inputs: {x: {shape: [6, 6, 2]}}
layers:
  - conv2d: {name: c1, filters: 4, kernel_size: 3, padding: same}
  - batch_norm: {name: bn}
  - residual:
      name: res
      layers:
        - conv2d: {name: c2, filters: 4, kernel_size: 3, padding: same}
  - reshape: {name: seq, target_shape: [36, 4]}
  - multi_head_attention: {name: mha, num_heads: 2, key_dim: 3}
  - global_average_pooling1d: {name: pool}
  - dense: {name: head, units: 3}
"""


def spec_with(extra: str, base: str = TINY) -> str:
    return base + extra


def inputs(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(4, 6, 6, 2)).astype("float32")


def randomize(model: Any, seed: int = 1) -> None:
    """Every float variable to seeded random values of a sane scale (kernels ~ 1/sqrt(fan-in),
    batch norm's scale and variance in [0.5, 1.5], offsets and means small): a source that
    differs from any fresh initialization and keeps a deep network's activations finite."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        values = []
        for variable, w in zip(layer.weights, layer.get_weights()):
            name = str(variable.path).rsplit("/", 1)[-1]
            if w.dtype.kind != "f":
                values.append(w)
            elif w.ndim >= 2:
                values.append((rng.normal(size=w.shape) / np.sqrt(np.prod(w.shape[:-1]))).astype(w.dtype))
            elif name in ("gamma", "moving_variance", "variance"):
                values.append(rng.uniform(0.5, 1.5, size=w.shape).astype(w.dtype))
            else:
                values.append(rng.normal(scale=0.1, size=w.shape).astype(w.dtype))
        if values:
            layer.set_weights(values)


def write_legacy(path: Path, model: Any) -> Path:
    """The legacy HDF5 layout keras.applications ships: `layer_names` at the top, each layer's
    `weight_names` (`c1/kernel:0`), datasets at those paths inside the layer's group."""
    with h5py.File(path, "w") as handle:
        handle.attrs["layer_names"] = np.array([layer.name.encode() for layer in model.layers])
        handle.attrs["backend"] = b"tensorflow"
        handle.attrs["keras_version"] = b"2.15.0"
        for layer in model.layers:
            group = handle.create_group(layer.name)
            names = [f"{variable.path}:0" for variable in layer.weights]
            group.attrs["weight_names"] = np.array([n.encode() for n in names])
            for name, value in zip(names, layer.get_weights()):
                group.create_dataset(name, data=value)
    return path
