"""Per-layer figures computed from built Keras layers: MACs and receptive fields.

MACs are multiply-accumulates for ONE sample: a dense layer costs in*out per position,
a convolution costs out_positions * filters * kernel_area * in_channels / groups (bias
adds are not counted), depthwise and separable convolutions count their two parts, and
custom layers report their own through `kbuilder_macs(input_shape)`. A transposed
convolution costs in_positions * in_channels * kernel_area * filters: every input value
is multiplied by every weight of its kernel (cropped-away `same` borders included, as
the operation computes them). Normalization,
activation, pooling, merge and reshaping layers count 0, as in the papers' tables.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


def _positions(shape: Sequence[Any]) -> int:
    return math.prod(int(d) for d in shape[1:-1] if d is not None)


def _conv(layer, in_shape, out_shape) -> int:
    k = math.prod(layer.kernel_size)
    return _positions(out_shape) * out_shape[-1] * k * in_shape[-1] // getattr(layer, "groups", 1)


def _depthwise(layer, in_shape, out_shape) -> int:
    return _positions(out_shape) * out_shape[-1] * math.prod(layer.kernel_size)


def _separable(layer, in_shape, out_shape) -> int:
    mid = in_shape[-1] * layer.depth_multiplier
    return _positions(out_shape) * (mid * math.prod(layer.kernel_size) + mid * out_shape[-1])


def _transposed(layer, in_shape, out_shape) -> int:
    return _positions(in_shape) * in_shape[-1] * math.prod(layer.kernel_size) * out_shape[-1]


def _dense(layer, in_shape, out_shape) -> int:
    return (
        _positions(in_shape + (1,)) * in_shape[-1] * out_shape[-1]
        if len(in_shape) > 2
        else in_shape[-1] * out_shape[-1]
    )


def macs(layer, in_shape: tuple, out_shape: tuple) -> int:
    """Multiply-accumulates of `layer` for one sample (shapes include the batch axis)."""
    import keras

    if hasattr(layer, "kbuilder_macs"):
        return int(layer.kbuilder_macs(in_shape))
    rules = (
        (keras.layers.SeparableConv2D, _separable),
        (keras.layers.SeparableConv1D, _separable),
        (keras.layers.DepthwiseConv2D, _depthwise),
        ((keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D), _conv),
        (
            (keras.layers.Conv1DTranspose, keras.layers.Conv2DTranspose, keras.layers.Conv3DTranspose),
            _transposed,
        ),
        (keras.layers.Dense, _dense),
    )
    for cls, rule in rules:
        if isinstance(layer, cls):
            return int(rule(layer, in_shape, out_shape))
    return 0


@dataclass(frozen=True)
class ReceptiveField:
    """The input window one output position sees: size and cumulative stride per axis.
    `stride` is None once positions are gone (flatten, global pooling)."""

    size: tuple[int, ...]
    stride: tuple[int, ...] | None

    def text(self) -> str:
        size = "x".join(map(str, self.size))
        return f"{size} (global)" if self.stride is None else f"{size}/{'x'.join(map(str, self.stride))}"

    def as_json(self) -> dict:
        return {"size": list(self.size), "stride": list(self.stride) if self.stride else None}


def _tuple(value, rank: int) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, (tuple, list)) else (int(value),) * rank


def receptive_field(
    layer, inputs: list[ReceptiveField | None], input_extent: tuple[int, ...] | None
) -> ReceptiveField | None:
    """Propagate receptive fields through one layer (None: the input has no spatial axes)."""
    import keras

    known = [rf for rf in inputs if rf is not None]
    if not known:
        return None
    rank = len(known[0].size)
    size = tuple(max(rf.size[i] for rf in known) for i in range(rank))
    if any(rf.stride is None for rf in known):
        return ReceptiveField(size, None)
    stride = tuple(max(rf.stride[i] for rf in known) for i in range(rank))
    global_kinds = (
        keras.layers.Flatten,
        keras.layers.Reshape,
        keras.layers.GlobalAveragePooling2D,
        keras.layers.GlobalMaxPooling2D,
        keras.layers.GlobalAveragePooling1D,
        keras.layers.GlobalMaxPooling1D,
    )
    if isinstance(layer, global_kinds):
        return ReceptiveField(input_extent or size, None)
    if isinstance(
        layer, (keras.layers.Conv1DTranspose, keras.layers.Conv2DTranspose, keras.layers.Conv3DTranspose)
    ):
        return _transposed_field(layer, size, stride, rank)
    window = getattr(layer, "kernel_size", None) or getattr(layer, "pool_size", None)
    if window is not None:
        window = _tuple(window, rank)
        steps = _tuple(getattr(layer, "strides", None) or window, rank)
        dilation = _tuple(getattr(layer, "dilation_rate", 1) or 1, rank)
        effective = tuple((w - 1) * d + 1 for w, d in zip(window, dilation))
        grown = tuple(s + (e - 1) * j for s, e, j in zip(size, effective, stride))
        return ReceptiveField(grown, tuple(j * s for j, s in zip(stride, steps)))
    if isinstance(layer, (keras.layers.UpSampling2D, keras.layers.UpSampling1D)):
        factor = _tuple(layer.size, rank)
        return ReceptiveField(size, tuple(max(1, j // f) for j, f in zip(stride, factor)))
    return ReceptiveField(size, stride)


def _transposed_field(layer, size: tuple[int, ...], stride: tuple[int, ...], rank: int) -> ReceptiveField:
    """A transposed convolution with stride s and (dilated) kernel k: one output position
    sums at most ceil(k / s) neighbouring input positions, so the field grows by
    (ceil(k / s) - 1) x stride_in; positions get s times denser, so the cumulative stride
    becomes stride_in / s, rounded down and at least 1 (as for upsampling)."""
    window, steps = _tuple(layer.kernel_size, rank), _tuple(layer.strides, rank)
    dilation = _tuple(getattr(layer, "dilation_rate", 1) or 1, rank)
    effective = tuple((w - 1) * d + 1 for w, d in zip(window, dilation))
    taps = tuple(-(-e // s) for e, s in zip(effective, steps))
    grown = tuple(n + (t - 1) * j for n, t, j in zip(size, taps, stride))
    return ReceptiveField(grown, tuple(max(1, j // s) for j, s in zip(stride, steps)))
