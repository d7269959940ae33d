"""Shape checks made before Keras sees a layer, so errors speak the spec's language. The
static walk (kbuilder.graph.shapes) makes them on the spec's shapes when validating; the
builder (kbuilder.build) makes them again on the real tensors' shapes."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from kbuilder.spec.figures import edge_pairs, fmt, pair, projection_stride

WINDOW_FIELDS = ("kernel_size", "pool_size")
__all__ = ["edge_pairs", "fmt", "merge_problem", "projection_stride", "shape_problem"]


def window_problem(kind: str, name: str, spec: Any, input_shape: Sequence[Any]) -> str | None:
    """'valid' windows larger than their input: LeNet's C5 after a wrong S4, say."""
    field = next((f for f in WINDOW_FIELDS if getattr(spec, f, None) is not None), None)
    if field is None or getattr(spec, "padding", "valid") != "valid" or getattr(spec, "transposed", False):
        return None  # a transposed window grows its input: any size fits
    spatial = tuple(input_shape[1:-1])
    if not spatial:
        return None
    window = pair(getattr(spec, field), len(spatial))
    dilation = pair(getattr(spec, "dilation_rate", 1) or 1, len(spatial))
    needed = tuple((w - 1) * d + 1 for w, d in zip(window, dilation))
    if any(s is not None and s < n for s, n in zip(spatial, needed)):
        return (
            f"layer '{name}' ({kind} {fmt(window)}, valid) needs at least {fmt(needed)} input, "
            f"gets {fmt(spatial)}"
        )
    return None


def crop_problem(kind: str, name: str, spec: Any, input_shape: Sequence[Any]) -> str | None:
    """Cropping must leave at least one row/column/step on every axis."""
    cropping = getattr(spec, "cropping", None)
    spatial = tuple(input_shape[1:-1])
    if cropping is None or not spatial:
        return None
    pairs = edge_pairs(cropping, len(spatial))
    cut = tuple(a + b for a, b in pairs)
    if len(cut) == len(spatial) and any(s is not None and s <= c for s, c in zip(spatial, cut)):
        return f"layer '{name}' ({kind}) cuts {fmt(cut)} off its input {fmt(spatial)}, leaving nothing"
    return None


_AXES = {3: "steps, channels", 4: "height, width, channels"}


def rank_problem(kind: str, name: str, spec: Any, input_shape: Sequence[Any]) -> str | None:
    """A 1D or 2D layer on an input of another rank (a conv2d after flatten, say)."""
    rank = getattr(spec, "input_rank", None)
    if rank is None or len(input_shape) == rank:
        return None
    axes = _AXES.get(rank, f"{rank - 1} axes")
    return (
        f"layer '{name}' ({kind}) needs an input of {rank - 1} axes ({axes}), gets ({fmt(input_shape[1:])})"
    )


def axes_problem(kind: str, name: str, spec: Any, input_shape: Sequence[Any]) -> str | None:
    """`shared_axes` must name axes of the input (1 .. rank - 1, or negative from the end)."""
    axes = getattr(spec, "shared_axes", None) or []
    rank = len(input_shape)
    outside = [a for a in axes if not (1 <= a < rank or -rank < a < 0)]
    if outside:
        return f"layer '{name}' ({kind}) shares axis {outside[0]}, but its input ({fmt(input_shape[1:])}) has axes 1 to {rank - 1}"
    return None


def reshape_problem(kind: str, name: str, spec: Any, input_shape: Sequence[Any]) -> str | None:
    """`target_shape` must hold the input's values exactly (one -1 takes the rest)."""
    target = getattr(spec, "target_shape", None)
    dims = tuple(input_shape[1:])
    if target is None or any(d is None for d in dims):
        return None
    size, rest = math.prod(dims), math.prod(d for d in target if d != -1)
    fits = (rest > 0 and size % rest == 0) if -1 in target else size == rest
    if fits:
        return None
    return (
        f"layer '{name}' ({kind}) cannot reshape its input ({fmt(dims)}, {size:,} values) to {tuple(target)}"
    )


def shape_problem(kind: str, name: str, spec: Any, input_shape: Sequence[Any]) -> str | None:
    """Every single-input shape check (rank, windows, cropping, axes, reshape) for one layer."""
    return (
        rank_problem(kind, name, spec, input_shape)
        or window_problem(kind, name, spec, input_shape)
        or crop_problem(kind, name, spec, input_shape)
        or axes_problem(kind, name, spec, input_shape)
        or reshape_problem(kind, name, spec, input_shape)
    )


def merge_problem(kind: str, name: str, shapes: Sequence[Sequence[Any]], axis: int = -1) -> str | None:
    """Concat inputs must match except on `axis`; add/multiply/... inputs must broadcast."""
    if len(shapes) < 2:
        return f"layer '{name}' ({kind}) needs two or more inputs, gets {len(shapes)}"
    listed = " and ".join(f"({fmt(s[1:])})" for s in shapes)
    if kind != "concat":
        return broadcast_problem(kind, name, shapes, listed)
    ranks = {len(s) for s in shapes}
    if len(ranks) > 1:
        return f"layer '{name}' ({kind}) cannot merge inputs of different ranks: {listed}"
    rank = ranks.pop()
    skip = axis % rank
    for dim in range(1, rank):
        sizes = {s[dim] for s in shapes if s[dim] is not None}
        if dim != skip and len(sizes) > 1:
            return f"layer '{name}' ({kind}) needs input shapes that match except on the concat axis; gets {listed}"
    return None


def broadcast_problem(kind: str, name: str, shapes: Sequence[Sequence[Any]], listed: str) -> str | None:
    """Keras's elementwise merges broadcast like NumPy over the dimensions after the batch:
    aligned from the right (a lower-rank input gets size-1 axes after its batch axis),
    each pair of sizes equal or one of them 1. Squeeze-and-excitation multiplies
    (H, W, C) by a (1, 1, C) gate this way."""
    features = [tuple(s[1:]) for s in shapes]
    rank = max(len(f) for f in features)
    padded = [(1,) * (rank - len(f)) + f for f in features]
    for dim in range(rank):
        sizes = {p[dim] for p in padded if p[dim] is not None and p[dim] != 1}
        if len(sizes) > 1:
            return (
                f"layer '{name}' ({kind}) needs input shapes that broadcast (each size equal or 1, "
                f"aligned from the right, e.g. (14x14x32) and (1x1x32)); gets {listed}"
            )
    return None


def projection_problem(name: str, source: Sequence[Any], target: Sequence[Any]) -> str | None:
    """A projection shortcut needs a stride taking its input onto the body's output."""
    if all(projection_stride(h, w) is not None for h, w in zip(source[1:-1], target[1:-1]) if h and w):
        return None
    return (
        f"layer '{name}' (projection) cannot project input {tuple(source[1:])} onto the "
        f"body's output {tuple(target[1:])}: no stride s gives ceil(input / s) = output on every spatial axis"
    )
