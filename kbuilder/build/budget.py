"""The build budget: a model too large to allocate is refused before any weight is, and
a graph too deep for Keras's recursive walk is refused (or given the stack it needs).

Keras allocates (and initializes) a layer's weights the moment the layer is called, so a
`dense: 1000000` after flattening a 224x224x3 image asks for 150 G parameters (560 GiB)
and dies deep inside TensorFlow. Before each layer is called, the builder estimates its
parameter count from the static input shape with the formula registered for its kind
here, and refuses the layer (exit 2, naming it) when the layer or the running total
passes the limit: `--max-params` on the command line, else KBUILDER_MAX_PARAMS, else
DEFAULT_MAX_PARAMS. A kind without weights registers no formula; tests compare every
formula with the real Keras count for every registered kind.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from kbuilder.errors import BuildError, ModelTooLarge, Problem, RuntimeFailure, UsageError

DEFAULT_MAX_PARAMS = 2_000_000_000
MAX_PARAMS_ENV = "KBUILDER_MAX_PARAMS"
BYTES_PER_PARAM = 4  # float32 weights; optimizer slots come on top when training

# (layer spec, input shapes with the batch axis first, shape of the tensor a projection matches)
ParamFormula = Callable[[Any, list[Sequence[Any]], Any], int]
PARAM_FORMULAS: dict[str, ParamFormula] = {}


def counts_params(*kinds: str) -> Callable[[ParamFormula], ParamFormula]:
    def register(formula: ParamFormula) -> ParamFormula:
        for kind in kinds:
            PARAM_FORMULAS[kind] = formula
        return formula

    return register


def max_params_limit(explicit: int | None = None) -> int:
    """The limit in force: the explicit value, else the environment, else the default."""
    if explicit is not None:
        return explicit
    raw = os.environ.get(MAX_PARAMS_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_PARAMS
    return parse_max_params(raw, MAX_PARAMS_ENV)


def parse_max_params(raw: str, source: str = "--max-params") -> int:
    """`2e9`, `2000000000` or `2_000_000_000` -> 2000000000 (a positive whole number)."""
    text = raw.strip().replace("_", "")
    try:
        value = float(text) if len(text) <= 30 else math.nan
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 1 or value != int(value):
        raise UsageError(f"{source} must be a positive whole number of parameters like 2e9; got {raw[:40]!r}")
    return int(value)


def _size(value: Any, rank: int) -> tuple[int, ...]:
    return tuple(int(v) for v in value) if isinstance(value, (list, tuple)) else (int(value),) * rank


def _channels(shapes: list[Sequence[Any]]) -> int:
    last = shapes[0][-1] if shapes and len(shapes[0]) else None
    return int(last) if last is not None else 1


def _bias(spec: Any, count: int) -> int:
    return count if getattr(spec, "use_bias", True) else 0


@counts_params("dense")
def _dense(spec, shapes, _target) -> int:
    return _channels(shapes) * spec.units + _bias(spec, spec.units)


@counts_params("conv1d", "conv2d", "conv1d_transpose", "conv2d_transpose")
def _conv(spec, shapes, _target) -> int:
    rank = max(len(shapes[0]) - 2, 1)
    window = math.prod(_size(spec.kernel_size, rank))
    groups = max(getattr(spec, "groups", 1), 1)
    return window * (_channels(shapes) // groups) * spec.filters + _bias(spec, spec.filters)


@counts_params("depthwise_conv2d")
def _depthwise(spec, shapes, _target) -> int:
    outputs = _channels(shapes) * spec.depth_multiplier
    return math.prod(_size(spec.kernel_size, 2)) * outputs + _bias(spec, outputs)


@counts_params("separable_conv2d")
def _separable(spec, shapes, _target) -> int:
    inner = _channels(shapes) * spec.depth_multiplier
    return math.prod(_size(spec.kernel_size, 2)) * inner + inner * spec.filters + _bias(spec, spec.filters)


@counts_params("embedding")
def _embedding(spec, _shapes, _target) -> int:
    return spec.input_dim * spec.output_dim


@counts_params("batch_norm")
def _batch_norm(spec, shapes, _target) -> int:
    channels = int(shapes[0][spec.axis] or 1)
    return channels * (2 + int(spec.center) + int(spec.scale))  # + moving mean and variance


@counts_params("normalization")
def _normalization(spec, shapes, _target) -> int:
    """Keras's Normalization keeps mean and variance per kept axis, and a count, as weights
    unless both are given as fixed values."""
    if getattr(spec, "mean", None) is not None:
        return 0
    axis = spec.axis if isinstance(spec.axis, list) else ([] if spec.axis is None else [spec.axis])
    kept = math.prod(int(shapes[0][a] or 1) for a in axis)
    return 2 * kept + 1


@counts_params("layer_norm")
def _layer_norm(spec, shapes, _target) -> int:
    return int(shapes[0][spec.axis] or 1) * (int(spec.center) + int(spec.scale))


@counts_params("prelu")
def _prelu(spec, shapes, _target) -> int:
    shared = {a % len(shapes[0]) for a in (spec.shared_axes or [])}
    return math.prod(int(d or 1) for i, d in enumerate(shapes[0]) if i > 0 and i not in shared)


@counts_params("partial_conv2d")
def _partial_conv(spec, _shapes, _target) -> int:
    connections = 60 if spec.connections == "lenet5_c3" else sum(len(c) for c in spec.connections)
    return math.prod(_size(spec.kernel_size, 2)) * connections + _bias(spec, spec.filters)


@counts_params("euclidean_rbf")
def _rbf(spec, shapes, _target) -> int:
    return spec.units * _channels(shapes)


@counts_params("trainable_subsampling")
def _subsampling(spec, shapes, _target) -> int:
    return 2 * _channels(shapes)


@counts_params("projection")
def _projection(spec, shapes, target) -> int:
    filters = int(target[-1]) if target is not None and target[-1] is not None else 1
    return _channels(shapes) * filters + _bias(spec, filters)


def estimate_params(kind: str, spec: Any, shapes: list[Sequence[Any]], target: Any = None) -> int:
    """The parameter count of one layer, from its spec and static input shapes."""
    formula = PARAM_FORMULAS.get(kind)
    return formula(spec, shapes, target) if formula is not None and shapes else 0


def memory(params: int) -> str:
    size = params * BYTES_PER_PARAM
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size >= scale:
            return f"{size / scale:,.1f} {unit}"
    return f"{size} bytes"


def over_budget(name: str, kind: str, layer: int, total: int, limit: int) -> str | None:
    """The message refusing a layer when it (or the model so far) passes `limit`."""
    if total <= limit:
        return None
    raise_it = (
        f"the limit is {limit:,} parameters; raise it with --max-params or {MAX_PARAMS_ENV} if you mean it"
    )
    if layer > limit:
        return (
            f"layer '{name}' ({kind}) would have about {layer:,} parameters ({memory(layer)} of float32 weights); "
            f"{raise_it}"
        )
    return (
        f"the model would reach about {total:,} parameters ({memory(total)} of float32 weights) at layer "
        f"'{name}' ({kind}, {layer:,} parameters); {raise_it}"
    )


# Keras walks a functional graph recursively (keras.src.ops.function._build_map_helper,
# one Python frame per layer on the longest path), so a chain of 2,000 layers overflows
# Python's default limit of 1,000 frames. Chains up to MAX_CHAIN get a higher limit;
# longer ones are refused, located, before Keras sees them.
MAX_CHAIN = 10_000
_FRAMES_PER_LAYER = 3


def longest_chain(nodes: Sequence[Any]) -> tuple[int, Any]:
    """Layers on the longest input-to-output path (nodes in topological order), and its last node."""
    depth: dict[str, int] = {}
    deepest, where = 0, None
    for node in nodes:
        depth[node.name] = 1 + max((depth.get(name, 0) for name in node.inputs), default=0)
        if depth[node.name] > deepest:
            deepest, where = depth[node.name], node
    return deepest, where


class BuildBudget:
    """What one build may take: a chain of at most MAX_CHAIN layers, and parameters up to
    the limit, weighed layer by layer before Keras allocates them."""

    def __init__(self, graph: Any, max_params: int | None = None):
        self.limit = max_params_limit(max_params)
        self.total = 0
        chain, node = longest_chain(graph.nodes)
        if chain > MAX_CHAIN:
            raise BuildError(
                [
                    Problem(
                        node.location,
                        f"the longest chain of layers has {chain:,} layers (up to layer "
                        f"'{node.name}'); kbuilder builds chains of at most {MAX_CHAIN:,}",
                        node.context,
                    )
                ]
            )
        needed = 1_000 + _FRAMES_PER_LAYER * chain
        if sys.getrecursionlimit() < needed:
            sys.setrecursionlimit(needed)  # pure Python frames: Keras's walk, its saving and loading

    def weigh(self, node: Any, inputs: list[Any], tensors: dict[str, Any]) -> None:
        """Add the layer's estimated parameters; refuse it (ModelTooLarge) past the limit."""
        target = tensors[node.shape_refs[0]].shape if node.shape_refs else None
        layer = estimate_params(node.kind, node.spec, [tuple(t.shape) for t in inputs], target)
        problem = over_budget(node.name, node.kind, layer, self.total + layer, self.limit)
        if problem:
            raise ModelTooLarge([Problem(node.location, problem, node.context)])
        self.total += layer


def out_of_memory(exc: BaseException, node: Any, budget: BuildBudget) -> BaseException:
    """A located RuntimeFailure for running out of memory while building `node`; any
    other exception is returned unchanged (to be re-raised)."""
    # By name: TensorFlow's ResourceExhaustedError, PyTorch's OutOfMemoryError, JAX's
    # XlaRuntimeError say so only in their names or text; importing them would import them all.
    name = type(exc).__name__
    if (
        isinstance(exc, MemoryError)
        or name in ("ResourceExhaustedError", "OutOfMemoryError")
        or (name == "XlaRuntimeError" and "RESOURCE_EXHAUSTED" in str(exc))
    ):
        return RuntimeFailure(
            f"out of memory while allocating the weights of layer '{node.name}' ({node.kind}, "
            f"about {budget.total:,} parameters with it): {name}"
        )
    return exc
