"""The build budget: a model too large to allocate is refused before any weight is, and
a graph too deep for Keras's recursive walk is refused (or given the stack it needs).

Keras allocates (and initializes) a layer's weights the moment the layer is called, so a
`dense: 1000000` after flattening a 224x224x3 image asks for 150 G parameters (560 GiB)
and dies deep inside TensorFlow. Before each layer is called, the builder estimates its
parameter count from the static input shape by its spec kind's rule (`LayerSpec.params`,
beside the kind in kbuilder/spec/layers/), and refuses the layer (exit 2, naming it) when
the layer or the running total passes the limit: `--max-params` on the command line, else
KBUILDER_MAX_PARAMS, else DEFAULT_MAX_PARAMS. Tests compare every kind's rule with the
real Keras count for every layer example and bundled spec.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Sequence
from typing import Any

from kbuilder.errors import BuildError, ModelTooLarge, Problem, RuntimeFailure, UsageError

DEFAULT_MAX_PARAMS = 2_000_000_000
MAX_PARAMS_ENV = "KBUILDER_MAX_PARAMS"
BYTES_PER_PARAM = 4  # float32 weights; optimizer slots come on top when training


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


def estimate_params(kind: str, spec: Any, shapes: list[Sequence[Any]], target: Any = None) -> int:
    """The parameter count of one layer, from its spec kind's rule on its input shapes (batch
    axis first) and, for a projection, the shape of the tensor it matches."""
    if kind == "input" or not shapes:
        return 0
    inputs = [tuple(s) for s in shapes] + ([tuple(target)] if target is not None else [])
    return int(spec.params(inputs).total)


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
        self.weigh_shapes(node, [tuple(t.shape) for t in inputs], target)

    def weigh_shapes(self, node: Any, shapes: Sequence[Sequence[Any]], target: Any = None) -> None:
        """`weigh` on the input shapes alone (the static build: no tensors)."""
        layer = estimate_params(node.kind, node.spec, list(shapes), target)
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
