"""Graph -> keras.Model: each node built by its kind's builder (kbuilder.build.builders),
after the shape checks and the parameter budget have let it through."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import keras

from kbuilder.build.budget import BuildBudget, out_of_memory
from kbuilder.build.builders import builder_for
from kbuilder.errors import BuildError, Problem, SpecError
from kbuilder.graph import Graph, expand
from kbuilder.graph.shapes import node_problem
from kbuilder.spec import LoadedSpec


@dataclass
class BuiltModel:
    """A Keras model with the graph and spec it was built from."""

    model: Any
    graph: Graph
    loaded: LoadedSpec
    weights: Any = None  # the LoadPlan (kbuilder.weights) when trained weights were loaded


def _precheck(node, inputs: list[Any], tensors: dict[str, Any]) -> str | None:
    """The shape problem of `node` on these tensors, in the words of the static build
    (kbuilder.build.static): both report a failing spec the same way."""
    shapes = [tuple(t.shape) for t in (*inputs, *(tensors[name] for name in node.shape_refs))]
    return node_problem(node, shapes) if shapes else None


def _fail(node, message: str) -> BuildError:
    return BuildError([Problem(node.location, message, node.context)])


def build_graph(graph: Graph, max_params: int | None = None) -> Any:
    """Build the functional Keras model of an expanded graph; refuse it before any weight
    is allocated if it would pass `max_params` (default: `max_params_limit()`).

    A layer that cannot be built raises SpecError/BuildError carrying `built_tensors`, the
    outputs of the layers built before it, so the CLI can show the table up to the failure."""
    budget = BuildBudget(graph, max_params)  # refuses a too long chain now, too many parameters per layer
    tensors: dict[str, Any] = {}
    try:
        _build_nodes(graph, tensors, budget)
    except SpecError as exc:
        exc.built_tensors = dict(tensors)  # type: ignore[attr-defined]  # read back by build() below
        raise
    model_inputs = [tensors[name] for name in graph.inputs]
    outputs = [tensors[name] for name in graph.outputs]
    return keras.Model(
        inputs=model_inputs[0] if len(model_inputs) == 1 else {n: tensors[n] for n in graph.inputs},
        outputs=outputs[0] if len(outputs) == 1 else outputs,
        name=graph.name,
    )


def _build_nodes(graph: Graph, tensors: dict[str, Any], budget: BuildBudget) -> None:
    for node in graph.nodes:
        inputs = [tensors[name] for name in node.inputs]
        if node.rebind is not None:
            node.spec = node.rebind(int(inputs[0].shape[-1]))
        problem = _precheck(node, inputs, tensors)
        if problem:
            raise _fail(node, problem)
        budget.weigh(node, inputs, tensors)
        try:
            tensors[node.name] = builder_for(node.kind)(node, inputs, tensors)
        except (ValueError, TypeError, KeyError, IndexError) as exc:  # Keras on a rank it does not take
            received = ", ".join(str(tuple(t.shape)) for t in inputs) or "none"
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise _fail(
                node, f"layer '{node.name}' ({node.kind}) cannot be built on input {received}: {first_line}"
            ) from None
        except Exception as exc:  # noqa: BLE001  (out of memory by any backend's name; others re-raised)
            raise out_of_memory(exc, node, budget) from None


def partial_model(graph: Graph, loaded: LoadedSpec, tensors: dict[str, Any]) -> BuiltModel | None:
    """The layers built before a failure as a model whose outputs are all of them (for the
    table up to the failing layer; only the inputs when the first layer failed)."""
    nodes = [node for node in graph.nodes if node.name in tensors]
    inputs = [tensors[n.name] for n in nodes if n.kind == "input"]
    outputs = [tensors[n.name] for n in nodes if n.kind != "input"] or inputs
    if not inputs:
        return None
    try:
        model = keras.Model(inputs=inputs, outputs=outputs, name=graph.name)
    except (ValueError, TypeError):  # e.g. a layer built on an input not yet declared
        return None
    part = Graph(
        graph.name,
        nodes,
        [n.name for n in nodes if n.kind == "input"],
        [n.name for n in nodes],
        graph.aliases,
        graph.groups,
    )
    return BuiltModel(model, part, loaded)


def build(loaded: LoadedSpec, max_params: int | None = None) -> BuiltModel:
    """Expand and build a loaded spec. A build failure carries `partial`: the BuiltModel of
    the layers built before it (or None)."""
    graph = expand(loaded)
    try:
        return BuiltModel(build_graph(graph, max_params), graph, loaded)
    except SpecError as exc:
        tensors = getattr(exc, "built_tensors", None)
        exc.partial = partial_model(graph, loaded, tensors) if tensors else None  # type: ignore[attr-defined]
        raise


def build_model(loaded: LoadedSpec, max_params: int | None = None) -> Any:
    """The keras.Model of a loaded spec."""
    return build(loaded, max_params).model


__all__ = ["BuiltModel", "build", "build_graph", "build_model", "partial_model"]
