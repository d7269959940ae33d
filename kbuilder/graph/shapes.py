"""Static shapes: the output shape of every node computed from the spec alone (no Keras),
so `validate` finds the shape mistakes `build` would: a window larger than its input,
a merge of unequal shapes, cropping that leaves nothing, a projection with no stride.

Shapes carry the batch axis as None, as Keras's do. A kind without a rule here (or a
shape this arithmetic cannot follow) makes its output unknown, and the nodes after it
are not checked: the pass never refuses what Keras would build. tests/test_static_shapes.py
compares these shapes with Keras's for every layer example and bundled spec.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from kbuilder.build.checks import edge_pairs, merge_problem, projection_stride, shape_problem
from kbuilder.errors import BuildError, Problem
from kbuilder.spec.layers.merge import MERGE_KINDS

Shape = tuple
RULES: dict[str, Callable[[Any, list[Shape]], Shape]] = {}
# Kinds whose output has their input's shape.
SAME_SHAPE = (
    "activation",
    "relu",
    "leaky_relu",
    "elu",
    "prelu",
    "softmax",
    "dropout",
    "spatial_dropout1d",
    "spatial_dropout2d",
    "batch_norm",
    "layer_norm",
    "lrn",
    "rescaling",
    "scaled_tanh",
    "hard_sigmoid",
    "hard_swish",
    "normalization",  # registered by kbuilder/spec/layers/hard_activations.py, normalization.py
)


def rule(*kinds: str):
    def register(fn):
        for kind in kinds:
            RULES[kind] = fn
        return fn

    return register


def _n(value: Any, rank: int) -> tuple[int, ...]:
    return tuple(int(v) for v in value) if isinstance(value, (list, tuple)) else (int(value),) * rank


def _windowed(size: int | None, window: int, stride: int, dilation: int, padding: str) -> int | None:
    if size is None:
        return None
    if padding in ("same", "causal"):
        return -(-size // stride)
    return (size - ((window - 1) * dilation + 1)) // stride + 1


def _spatial(spec: Any, shape: Shape, window_field: str, default_stride: Any = 1) -> tuple:
    rank = len(shape) - 2
    window = _n(getattr(spec, window_field), rank)
    strides = _n(getattr(spec, "strides", None) or default_stride or window, rank)
    dilation = _n(getattr(spec, "dilation_rate", 1) or 1, rank)
    padding = getattr(spec, "padding", "valid")
    return tuple(_windowed(n, w, s, d, padding) for n, w, s, d in zip(shape[1:-1], window, strides, dilation))


@rule(*SAME_SHAPE)
def _same(spec, shapes):
    return shapes[0]


@rule("conv1d", "conv2d", "separable_conv2d", "partial_conv2d")
def _conv(spec, shapes):
    return (None, *_spatial(spec, shapes[0], "kernel_size"), spec.filters)


@rule("depthwise_conv2d")
def _depthwise(spec, shapes):
    channels = shapes[0][-1]
    return (
        None,
        *_spatial(spec, shapes[0], "kernel_size"),
        None if channels is None else channels * spec.depth_multiplier,
    )


@rule("max_pooling1d", "max_pooling2d", "average_pooling1d", "average_pooling2d", "trainable_subsampling")
def _pool(spec, shapes):
    return (None, *_spatial(spec, shapes[0], "pool_size", default_stride=None), shapes[0][-1])


@rule("conv1d_transpose", "conv2d_transpose")
def _transposed(spec, shapes):
    rank = len(shapes[0]) - 2
    kernel, strides = _n(spec.kernel_size, rank), _n(spec.strides, rank)
    dilation = _n(spec.dilation_rate, rank)
    pads = None if spec.output_padding is None else _n(spec.output_padding, rank)
    sizes = []
    for i, n in enumerate(shapes[0][1:-1]):
        k = (kernel[i] - 1) * dilation[i] + 1
        if n is None:
            sizes.append(None)
        elif pads is None:
            sizes.append(
                n * strides[i] if spec.padding == "same" else (n - 1) * strides[i] + max(k, strides[i])
            )
        else:
            cut = 2 * (k // 2) if spec.padding == "same" else 0
            sizes.append((n - 1) * strides[i] + k - cut + pads[i])
    return (None, *sizes, spec.filters)


@rule("dense", "euclidean_rbf")
def _dense(spec, shapes):
    return (*shapes[0][:-1], spec.units)


@rule("maxout")
def _maxout(spec, shapes):
    shape = list(shapes[0])
    shape[getattr(spec, "axis", -1)] = spec.num_units
    return tuple(shape)


@rule("flatten")
def _flatten(spec, shapes):
    dims = shapes[0][1:]
    return (None, None if None in dims else math.prod(dims))


@rule("global_average_pooling1d", "global_max_pooling1d", "global_average_pooling2d", "global_max_pooling2d")
def _global(spec, shapes):
    shape = shapes[0]
    return (None, *(1,) * (len(shape) - 2), shape[-1]) if spec.keepdims else (None, shape[-1])


@rule("zero_padding1d", "zero_padding2d")
def _padding(spec, shapes):
    spatial = shapes[0][1:-1]
    pairs = edge_pairs(spec.padding, len(spatial))
    return (None, *(None if n is None else n + a + b for n, (a, b) in zip(spatial, pairs)), shapes[0][-1])


@rule("cropping1d", "cropping2d")
def _cropping(spec, shapes):
    spatial = shapes[0][1:-1]
    pairs = edge_pairs(spec.cropping, len(spatial))
    return (None, *(None if n is None else n - a - b for n, (a, b) in zip(spatial, pairs)), shapes[0][-1])


@rule("upsampling2d")
def _upsampling(spec, shapes):
    factors = _n(spec.size, 2)
    return (None, *(None if n is None else n * f for n, f in zip(shapes[0][1:-1], factors)), shapes[0][-1])


@rule("reshape")
def _reshape(spec, shapes):
    target = list(spec.target_shape)
    if -1 in target:
        size = math.prod(shapes[0][1:]) if None not in shapes[0][1:] else None
        rest = math.prod(d for d in target if d != -1)
        target[target.index(-1)] = None if size is None or size % rest else size // rest
    return (None, *target)


@rule("adaptive_average_pooling2d", "adaptive_max_pooling2d")
def _adaptive(spec, shapes):
    return (None, *_n(spec.output_size, 2), shapes[0][-1])


@rule("embedding")
def _embedding(spec, shapes):
    return (*shapes[0], spec.output_dim)


@rule("add", "subtract", "multiply", "average", "maximum")
def _elementwise(spec, shapes):
    # NumPy broadcasting: shapes aligned from the right, a missing or size-1 axis takes the
    # other inputs' size.
    rank = max(len(s) for s in shapes) - 1
    dims = [(1,) * (rank - len(s) + 1) + tuple(s[1:]) for s in shapes]
    return (None, *(max((d[i] for d in dims if d[i] is not None), default=None) for i in range(rank)))


@rule("concat")
def _concat(spec, shapes):
    axis = spec.axis % len(shapes[0])
    sizes = [s[axis] for s in shapes]
    merged = None if None in sizes else sum(sizes)
    return tuple(merged if i == axis else shapes[0][i] for i in range(len(shapes[0])))


def _node_shape(node, shapes: list[Shape], known: dict[str, Shape]) -> tuple[Shape | None, str | None]:
    """(output shape or None if unknown, problem or None) of one node."""
    spec = node.spec
    if node.kind in MERGE_KINDS:
        problem = merge_problem(node.kind, node.name, shapes, getattr(spec, "axis", -1))
        return (None, problem) if problem else (RULES[node.kind](spec, shapes), None)
    if node.kind == "projection":
        target = known.get(node.shape_refs[0]) if node.shape_refs else None
        if target is None:
            return None, None
        if any(projection_stride(h, w) is None for h, w in zip(shapes[0][1:-1], target[1:-1]) if h and w):
            return None, (
                f"layer '{node.name}' (projection) cannot project input {tuple(shapes[0][1:])} onto the "
                f"body's output {tuple(target[1:])}: no stride s gives ceil(input / s) = output on every spatial axis"
            )
        return (*target[:-1], target[-1]), None
    problem = shape_problem(node.kind, node.name, spec, shapes[0])
    if problem:
        return None, problem
    fn = RULES.get(node.kind)
    return (fn(spec, shapes) if fn else None), None


def static_shapes(graph) -> dict[str, Shape | None]:
    """Every node's output shape (None where unknown); raises BuildError with every
    shape problem found, located at its layer."""
    known: dict[str, Shape | None] = {}
    problems: list[Problem] = []
    for node in graph.nodes:
        if node.kind == "input":
            known[node.name] = (None, *node.spec.shape)
            continue
        shapes = [known.get(name) for name in node.inputs]
        if any(s is None for s in shapes) or not shapes:
            known[node.name] = None
            continue
        if node.rebind is not None and shapes[0][-1] is not None:
            node_spec = node.rebind(int(shapes[0][-1]))  # raises the spec's own located error
            node = _with_spec(node, node_spec)
        try:
            shape, problem = _node_shape(node, shapes, known)
        except (TypeError, ValueError, IndexError, ZeroDivisionError):
            shape, problem = None, None  # beyond this arithmetic: Keras will tell
        if problem:
            problems.append(Problem(node.location, problem, node.context))
        known[node.name] = shape if shape is None or all(d is None or d > 0 for d in shape[1:]) else None
    if problems:
        raise BuildError(problems)
    return known


def _with_spec(node, spec):
    from dataclasses import replace

    return replace(node, spec=spec)
