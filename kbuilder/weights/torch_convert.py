"""One PyTorch module's tensors in the layout of one Keras layer's weights.

PyTorch stores a convolution as (out, in/groups, *window) and Keras as (*window, in/groups,
out); a depthwise convolution (channels x multiplier, 1, *window) against Keras's (*window,
channels, multiplier); a transposed convolution (in, out, *window) against (*window, out,
in); a linear layer (out, in) against (in, out) — and when that linear layer reads a
flattened feature map, PyTorch flattened it channels first (C, H, W) where Keras flattens
channels last (H, W, C), so its input rows are permuted too. Batch and layer normalization
rename their tensors (weight -> gamma, bias -> beta, running_mean -> moving_mean,
running_var -> moving_variance); their values need no change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import keras
import numpy as np

# Keras's weight names -> the PyTorch tensor each is read from (the part after the module name).
TORCH_NAMES = {
    "kernel": "weight",
    "depthwise_kernel": "weight",
    "embeddings": "weight",
    "bias": "bias",
    "gamma": "weight",
    "beta": "bias",
    "moving_mean": "running_mean",
    "moving_variance": "running_var",
}
CONVOLUTIONS = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)
DEPTHWISE = (keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D)
TRANSPOSED = (keras.layers.Conv1DTranspose, keras.layers.Conv2DTranspose, keras.layers.Conv3DTranspose)
NORMALIZATIONS = (keras.layers.BatchNormalization, keras.layers.LayerNormalization)
SUPPORTED = (*CONVOLUTIONS, *DEPTHWISE, keras.layers.Dense, keras.layers.Embedding, *NORMALIZATIONS)


@dataclass
class Module:
    """A PyTorch module's tensors: `features.0` holds `features.0.weight` and `features.0.bias`."""

    name: str
    tensors: dict[str, str] = field(default_factory=dict)  # "weight" -> "features.0.weight"

    def describe(self, arrays: dict[str, np.ndarray]) -> str:
        shapes = ", ".join(f"{key} {tuple(arrays[name].shape)}" for key, name in self.tensors.items())
        return f"'{self.name}' ({shapes})"


def group_modules(names: Sequence[str]) -> list[Module]:
    """Tensors grouped by their module (the name up to the last dot), in order of first use."""
    modules: dict[str, Module] = {}
    for name in names:
        prefix, _, key = name.rpartition(".")
        modules.setdefault(prefix, Module(prefix)).tensors[key] = name
    return list(modules.values())


def is_supported(layer: object) -> bool:
    # Transposed convolutions subclass the plain ones in Keras; their layout differs, so they are out.
    return isinstance(layer, SUPPORTED) and not isinstance(layer, TRANSPOSED)


def convert(
    layer: object, key: str, array: np.ndarray, expected: Sequence[int], flatten_input: Sequence[int] | None
) -> tuple[np.ndarray, str]:
    """The PyTorch tensor `array` (for the Keras weight `key`, of shape `expected`) in Keras's
    layout, and a note saying how it was converted ('' if unchanged). A tensor that cannot
    be converted comes back as it is: the caller compares its shape with `expected`."""
    if key in ("kernel", "depthwise_kernel") and array.ndim >= 3 and isinstance(layer, DEPTHWISE):
        channels, multiplier = int(expected[-2]), int(expected[-1])
        if array.shape[0] != channels * multiplier or array.shape[1] != 1:
            return array, ""
        grouped = array.reshape(channels, multiplier, *array.shape[2:])
        order = (*range(2, grouped.ndim), 0, 1)
        return np.ascontiguousarray(grouped.transpose(order)), "depthwise (C*m, 1, *k) -> (*k, C, m)"
    if key == "kernel" and array.ndim >= 3 and isinstance(layer, CONVOLUTIONS):
        order = (*range(2, array.ndim), 1, 0)
        return np.ascontiguousarray(array.transpose(order)), _conv_note(array.ndim)
    if key == "kernel" and array.ndim == 2 and isinstance(layer, keras.layers.Dense):
        return _dense(array, flatten_input)
    return array, ""


def _conv_note(rank: int) -> str:
    return {3: "OIW -> WIO", 4: "OIHW -> HWIO", 5: "OIDHW -> DHWIO"}.get(rank, "channels last")


def _dense(array: np.ndarray, flatten_input: Sequence[int] | None) -> tuple[np.ndarray, str]:
    """(out, in) -> (in, out); after a flatten of a (*spatial, C) map whose size matches, the
    input rows go from PyTorch's (C, *spatial) order to Keras's (*spatial, C)."""
    out, width = array.shape
    if flatten_input and len(flatten_input) >= 2 and int(np.prod(flatten_input[:-1])) > 1:
        *spatial, channels = (int(d) for d in flatten_input)
        if channels * int(np.prod(spatial)) == width:
            chw = array.reshape(out, channels, *spatial)
            order = (*range(2, chw.ndim), 1, 0)
            rows = np.ascontiguousarray(chw.transpose(order).reshape(width, out))
            spatial_text = ", ".join(str(d) for d in spatial)
            return (
                rows,
                f"(out, in) -> (in, out); flatten order ({channels}, {spatial_text}) -> ({spatial_text}, {channels})",
            )
    return np.ascontiguousarray(array.T), "(out, in) -> (in, out)"
