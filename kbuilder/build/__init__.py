"""Graph -> keras.Model through the builder registry (Keras is imported lazily)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from kbuilder.build.budget import estimate_params, max_params_limit, over_budget
from kbuilder.build.checks import merge_problem, window_problem
from kbuilder.build.registry import builder_for
from kbuilder.errors import BuildError, ModelTooLarge, Problem, RuntimeFailure
from kbuilder.graph import Graph, expand
from kbuilder.spec import LoadedSpec
from kbuilder.spec.layers.merge import MERGE_KINDS


@dataclass
class BuiltModel:
    """A Keras model with the graph and spec it was built from."""

    model: Any
    graph: Graph
    loaded: LoadedSpec


def _precheck(node, inputs: list[Any]) -> str | None:
    shapes = [tuple(t.shape) for t in inputs]
    if node.kind in MERGE_KINDS:
        return merge_problem(node.kind, node.name, shapes, getattr(node.spec, "axis", -1))
    return window_problem(node.kind, node.name, node.spec, shapes[0]) if shapes else None


def _fail(node, message: str) -> BuildError:
    return BuildError([Problem(node.location, message, node.context)])


# Keras walks a functional graph recursively (keras.src.ops.function._build_map_helper,
# one Python frame per layer on the longest path), so a chain of 2,000 layers overflows
# Python's default limit of 1,000 frames. Chains up to MAX_CHAIN get a higher limit;
# longer ones are refused, located, before Keras sees them.
MAX_CHAIN = 10_000
_FRAMES_PER_LAYER = 3


def _longest_chain(graph: Graph) -> tuple[int, Any]:
    """Layers on the longest input-to-output path, and the node that ends it."""
    depth: dict[str, int] = {}
    deepest, where = 0, None
    for node in graph.nodes:  # topological order
        depth[node.name] = 1 + max((depth.get(name, 0) for name in node.inputs), default=0)
        if depth[node.name] > deepest:
            deepest, where = depth[node.name], node
    return deepest, where


def _allow_chain(graph: Graph) -> None:
    chain, node = _longest_chain(graph)
    if chain > MAX_CHAIN:
        raise _fail(node, f"the longest chain of layers has {chain:,} layers (up to layer '{node.name}'); "
                          f"kbuilder builds chains of at most {MAX_CHAIN:,}")
    needed = 1_000 + _FRAMES_PER_LAYER * chain
    if sys.getrecursionlimit() < needed:
        sys.setrecursionlimit(needed)  # pure Python frames: Keras's walk, its saving and loading


def _weigh(node, inputs: list[Any], tensors: dict[str, Any], total: int, limit: int) -> int:
    """Add the layer's estimated parameters to `total`; refuse it past `limit`."""
    target = tensors[node.shape_refs[0]].shape if node.shape_refs else None
    layer = estimate_params(node.kind, node.spec, [tuple(t.shape) for t in inputs], target)
    problem = over_budget(node.name, node.kind, layer, total + layer, limit)
    if problem:
        raise ModelTooLarge([Problem(node.location, problem, node.context)])
    return total + layer


def _out_of_memory(exc: BaseException) -> bool:
    # By name: TensorFlow's ResourceExhaustedError, PyTorch's OutOfMemoryError, JAX's
    # XlaRuntimeError say so only in their names or text; importing them would import them all.
    name = type(exc).__name__
    return isinstance(exc, MemoryError) or name in ("ResourceExhaustedError", "OutOfMemoryError") or (
        name == "XlaRuntimeError" and "RESOURCE_EXHAUSTED" in str(exc))


def build_graph(graph: Graph, max_params: int | None = None) -> Any:
    """Build the functional Keras model of an expanded graph; refuse it before any weight
    is allocated if it would pass `max_params` (default: `max_params_limit()`)."""
    limit = max_params_limit(max_params)
    _allow_chain(graph)
    import keras

    tensors: dict[str, Any] = {}
    total = 0
    for node in graph.nodes:
        inputs = [tensors[name] for name in node.inputs]
        if node.rebind is not None:
            node.spec = node.rebind(int(inputs[0].shape[-1]))
        problem = _precheck(node, inputs)
        if problem:
            raise _fail(node, problem)
        total = _weigh(node, inputs, tensors, total, limit)
        try:
            tensors[node.name] = builder_for(node.kind)(node, inputs, tensors)
        except (ValueError, TypeError, KeyError) as exc:
            received = ", ".join(str(tuple(t.shape)) for t in inputs) or "none"
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise _fail(node, f"layer '{node.name}' ({node.kind}) cannot be built on input {received}: {first_line}") from None
        except Exception as exc:
            if not _out_of_memory(exc):
                raise
            raise RuntimeFailure(f"out of memory while allocating the weights of layer '{node.name}' ({node.kind}, "
                                 f"about {total:,} parameters so far): {type(exc).__name__}") from None
    model_inputs = [tensors[name] for name in graph.inputs]
    outputs = [tensors[name] for name in graph.outputs]
    return keras.Model(
        inputs=model_inputs[0] if len(model_inputs) == 1 else {n: tensors[n] for n in graph.inputs},
        outputs=outputs[0] if len(outputs) == 1 else outputs,
        name=graph.name,
    )


def build(loaded: LoadedSpec, max_params: int | None = None) -> BuiltModel:
    """Expand and build a loaded spec."""
    graph = expand(loaded)
    return BuiltModel(build_graph(graph, max_params), graph, loaded)


def build_model(loaded: LoadedSpec, max_params: int | None = None) -> Any:
    """The keras.Model of a loaded spec."""
    return build(loaded, max_params).model


__all__ = ["BuiltModel", "build", "build_graph", "build_model"]
