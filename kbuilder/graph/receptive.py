"""Receptive fields: the input window one output position sees, propagated layer by layer
from each kind's `field_step` (kbuilder/spec/layers/), without Keras.

A field is a size and a cumulative stride per spatial axis. A window of (dilated) size k
moving by s grows the field by (k - 1) x stride and multiplies the stride by s; a layer
that merges several inputs sees the largest of their fields; flatten and global pooling
end the positions (stride None, size the whole input).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kbuilder.spec.figures import FieldStep, pair


@dataclass(frozen=True)
class ReceptiveField:
    """The input window one output position sees: size and cumulative stride per axis.
    `stride` is None once positions are gone (flatten, global pooling)."""

    size: tuple[int, ...]
    stride: tuple[int, ...] | None

    def text(self) -> str:
        size = "x".join(map(str, self.size))
        return f"{size} (global)" if self.stride is None else f"{size}/{'x'.join(map(str, self.stride))}"

    def as_json(self) -> dict[str, Any]:
        return {"size": list(self.size), "stride": list(self.stride) if self.stride else None}


def start_field(spec: Any) -> ReceptiveField | None:
    """A model input's field: each position sees itself; a vector of features has no positions
    (token ids have no feature axis: every axis is a position)."""
    shape = spec.shape
    spatial = shape if spec.dtype.startswith(("int", "uint")) else shape[:-1]
    return ReceptiveField((1,) * len(spatial), (1,) * len(spatial)) if spatial else None


def input_extent(spec: Any, field: ReceptiveField | None) -> tuple[int, ...]:
    """The input's size along the axes its field has: what a global layer sees in the end."""
    return tuple(spec.shape[: len(field.size) if field else 0])


def propagate(
    step: FieldStep | None, inputs: list[ReceptiveField | None], extent: tuple[int, ...] | None
) -> ReceptiveField | None:
    """The field after one layer moving fields by `step` (None: unchanged), from its inputs'."""
    known = [rf for rf in inputs if rf is not None]
    if not known:
        return None
    rank = len(known[0].size)
    size = tuple(max(rf.size[i] for rf in known) for i in range(rank))
    strides = [rf.stride for rf in known]
    if any(s is None for s in strides):
        return ReceptiveField(size, None)
    stride = tuple(max(s[i] for s in strides if s is not None) for i in range(rank))
    if step is None:
        return ReceptiveField(size, stride)
    if step.mode == "global":
        return ReceptiveField(extent or size, None)
    steps = pair(step.stride, rank)
    if step.mode == "upsample":
        return ReceptiveField(size, tuple(max(1, j // f) for j, f in zip(stride, steps)))
    window = pair(step.window, rank)
    if step.mode == "transposed":
        # One output position sums at most ceil(k / s) neighbouring inputs; positions get
        # s times denser, so the stride becomes stride / s (at least 1, as for upsampling).
        taps = tuple(-(-k // s) for k, s in zip(window, steps))
        grown = tuple(n + (t - 1) * j for n, t, j in zip(size, taps, stride))
        return ReceptiveField(grown, tuple(max(1, j // s) for j, s in zip(stride, steps)))
    grown = tuple(n + (k - 1) * j for n, k, j in zip(size, window, stride))
    return ReceptiveField(grown, tuple(j * s for j, s in zip(stride, steps)))


def has_window(step: FieldStep | None) -> bool:
    """Whether a layer looks at neighbouring positions (a convolution or pooling window)."""
    return step is not None and step.mode in ("window", "transposed")
