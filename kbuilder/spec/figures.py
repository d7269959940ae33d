"""The vocabulary of a layer kind's static figures (pure Python, no Keras): shapes, parameter
counts with their trainable split, receptive-field steps, and the arithmetic they share.

Every LayerSpec answers four questions from the shapes of its inputs (each with the batch
axis first, as None, as Keras's shapes are): its output shape, its parameters, its
multiply-accumulates per sample, and how it moves a receptive field. The graph walk
(kbuilder.graph.shapes, kbuilder.graph.figures), the build budget and the report ask the
spec; nothing else keeps a table per kind.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

Dim = int | None
TensorShape = tuple[Dim, ...]  # with the batch axis first (None)


def pair(value: Any, rank: int) -> tuple[int, ...]:
    """A Keras size argument per axis: `3` -> (3,) * rank; `[3, 5]` or (3, 5) as given."""
    if isinstance(value, (list, tuple)):
        return tuple(int(v) for v in value)
    return (int(value),) * rank


def spatial_rank(shape: TensorShape) -> int:
    """The axes between batch and channels (at least 1, for a window rule on a vector)."""
    return max(len(shape) - 2, 1)


def positions(shape: TensorShape) -> int:
    """The spatial positions of a channels-last shape (unknown sizes are left out)."""
    return math.prod(int(d) for d in shape[1:-1] if d is not None)


def channels(shape: TensorShape) -> int:
    """The last axis's size; 1 when unknown (an estimate must not fail on it)."""
    last = shape[-1] if len(shape) > 1 else None
    return int(last) if last is not None else 1


def window_product(value: Any, shape: TensorShape) -> int:
    """The number of taps of a window (`kernel_size` given as one integer or per axis)."""
    return math.prod(pair(value, spatial_rank(shape)))


def windowed(size: Dim, window: int, stride: int, dilation: int, padding: str) -> Dim:
    """One axis's output size under a (dilated) window: `same`/`causal` keep ceil(in / stride)."""
    if size is None:
        return None
    if padding in ("same", "causal"):
        return -(-size // stride)
    return (size - ((window - 1) * dilation + 1)) // stride + 1


def edge_pairs(edges: Any, rank: int) -> tuple[tuple[int, int], ...]:
    """(before, after) per axis from Keras's cropping/padding forms: n, [a, b] (1D: start, end;
    2D: both sides of each axis), [[top, bottom], [left, right]]."""
    if isinstance(edges, int):
        return ((edges, edges),) * rank
    if all(isinstance(c, (list, tuple)) for c in edges):
        return tuple((int(a), int(b)) for a, b in edges)
    if rank == 1:
        return ((int(edges[0]), int(edges[1])),)
    return tuple((int(c), int(c)) for c in edges)


def padded(shape: TensorShape, edges: Any, sign: int) -> TensorShape:
    """`shape` with `edges` (Keras's padding/cropping forms) added (sign 1) or cut (-1) per axis."""
    spatial = shape[1:-1]
    pairs = edge_pairs(edges, len(spatial))
    sizes = (None if n is None else n + sign * (a + b) for n, (a, b) in zip(spatial, pairs))
    return (None, *sizes, shape[-1])


def projection_stride(have: Dim, want: Dim) -> int | None:
    """The stride of a 1x1 convolution taking `have` positions to `want`: a 1x1 window
    gives ceil(have / stride) positions under either padding, as a `same` body with that
    stride does (Xception's 147 -> 74 is stride 2). None when no stride fits."""
    if have is None or want is None or want < 1:
        return None
    stride = -(-have // want)  # ceiling division: the smallest stride that is not too small
    return stride if -(-have // stride) == want else None


@dataclass(frozen=True)
class Params:
    """A layer's parameter count, split as Keras splits its weights."""

    trainable: int = 0
    non_trainable: int = 0

    @property
    def total(self) -> int:
        return self.trainable + self.non_trainable

    def frozen(self) -> Params:
        """All of them non-trainable (`trainable: false` on the layer or a composite around it)."""
        return Params(0, self.total)

    def __add__(self, other: Params) -> Params:
        return Params(self.trainable + other.trainable, self.non_trainable + other.non_trainable)


def bias(spec: Any, count: int) -> int:
    """A bias vector of `count` values, unless the spec turns it off."""
    return count if getattr(spec, "use_bias", True) else 0


@dataclass(frozen=True)
class FieldStep:
    """How one layer moves a receptive field (per spatial axis):
    - "window": a (dilated) window of `window` input positions, moving by `stride`;
    - "transposed": a transposed window: positions get `stride` times denser;
    - "upsample": positions repeated `stride` times, nothing seen anew;
    - "global": the positions are gone (flatten, global pooling)."""

    mode: Literal["window", "transposed", "upsample", "global"]
    window: tuple[int, ...] = ()
    stride: tuple[int, ...] = ()


GLOBAL_STEP = FieldStep("global")


def window_step(spec: Any, shape: TensorShape, field: str, default_stride: Any = None) -> FieldStep:
    """The step of a windowed kind whose window is the spec's `field` (kernel_size, pool_size);
    strides default to `default_stride`, else to the window (pooling)."""
    rank = spatial_rank(shape)
    window = pair(getattr(spec, field), rank)
    strides = pair(getattr(spec, "strides", None) or default_stride or window, rank)
    dilation = pair(getattr(spec, "dilation_rate", 1) or 1, rank)
    effective = tuple((w - 1) * d + 1 for w, d in zip(window, dilation))
    return FieldStep("window", effective, strides)


def windowed_shape(
    spec: Any, shape: TensorShape, field: str, last: Dim, default_stride: Any = None
) -> TensorShape:
    """The output shape of a windowed kind: each spatial axis by `windowed`, then `last` channels."""
    rank = len(shape) - 2
    window = pair(getattr(spec, field), rank)
    strides = pair(getattr(spec, "strides", None) or default_stride or window, rank)
    dilation = pair(getattr(spec, "dilation_rate", 1) or 1, rank)
    padding = getattr(spec, "padding", "valid")
    sizes = (windowed(n, w, s, d, padding) for n, w, s, d in zip(shape[1:-1], window, strides, dilation))
    return (None, *sizes, last)


def fmt(shape: Sequence[Any]) -> str:
    """`12x12x4`, `?` for an unknown size: how messages write shapes."""
    return "x".join("?" if d is None else str(d) for d in shape)
