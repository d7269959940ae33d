"""Graph checks: topological order (cycles) and outputs that nothing uses."""

from __future__ import annotations

from kbuilder.errors import Problem, SpecError
from kbuilder.graph.graph import Graph, Node


def topological_order(graph: Graph) -> list[Node]:
    """Nodes ordered so every input comes first; stable for graphs written in order."""
    by_name = graph.by_name()
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    ordered: list[Node] = []

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = path[path.index(name) :] + [name]
            node = by_name[name]
            raise SpecError(
                [Problem(node.location, "layers form a cycle: " + " -> ".join(cycle), node.context)]
            )
        state[name] = 1
        node = by_name[name]
        for src in node.inputs + node.shape_refs:
            visit(src, path + [name])
        state[name] = 2
        ordered.append(node)

    for node in graph.nodes:
        visit(node.name, [])
    return ordered


def check_unused(graph: Graph) -> None:
    """A layer whose output goes nowhere is a mistake (Keras would silently drop it)."""
    consumers = graph.consumers()
    for node in graph.nodes:
        for ref in node.shape_refs:
            consumers.setdefault(ref, []).append(node.name)
    outputs = set(graph.outputs)
    problems = []
    for node in graph.nodes:
        if node.name in outputs or consumers.get(node.name):
            continue
        what = "model input" if node.kind == "input" else "the output of layer"
        problems.append(
            Problem(
                node.location,
                f"{what} '{node.name}' is never used; connect it or list it under `outputs:`",
                node.context,
            )
        )
    if problems:
        raise SpecError(problems)
