"""Which folds to write: only those whose spec expands to exactly the flat spec's graph.

The flat spec and a folded one are both expanded by kbuilder.graph (pure Python, no Keras)
and compared layer by layer: name, kind, validated arguments and resolved inputs, in the
same order, and the same model outputs. A fold that changes anything is dropped, so a
template that happens to produce other names, or other wiring, can never reach the file.
"""

from __future__ import annotations

from typing import Any

from kbuilder.errors import KBuilderError
from kbuilder.graph import expand
from kbuilder.importer.folding import Fold, plan_folds
from kbuilder.importer.keras_graph import KerasGraph
from kbuilder.importer.spec_writer import SpecLayer, spec_text
from kbuilder.spec import loads_spec

# Fields of a validated layer that say how it was written, not what it is.
WRITING_FIELDS = {"name", "inputs"}


def expanded(text: str) -> tuple[list[tuple[str, str, Any, list[str]]], list[str]] | None:
    """The spec's layers as (name, kind, arguments, inputs) and its outputs; None when the
    spec does not load or expand."""
    try:
        graph = expand(loads_spec(text, file="<folded>"))
    except KBuilderError:
        return None
    nodes = [
        (node.name, node.kind, node.spec.model_dump(exclude=WRITING_FIELDS), list(node.inputs))
        for node in graph.nodes
    ]
    return nodes, list(graph.outputs)


def folded_spec(
    graph: KerasGraph, layers: list[SpecLayer], runs: list, description: str
) -> tuple[str, list[Fold]]:
    """The spec text with every fold that keeps the flat graph, and those folds."""
    flat = spec_text(graph, layers, description)
    first_input = next(iter(graph.inputs)) if len(graph.inputs) == 1 else None
    candidates = plan_folds(layers, runs, first_input)
    if not candidates:
        return flat, []
    want = expanded(flat)
    text = spec_text(graph, layers, description, candidates)
    if want is not None and expanded(text) == want:
        return text, candidates
    # Some fold changes the graph: keep each fold that is exact alone.
    exact = [
        fold
        for fold in candidates
        if want is not None and expanded(spec_text(graph, layers, description, [fold])) == want
    ]
    text = spec_text(graph, layers, description, exact)
    if exact and expanded(text) == want:
        return text, exact
    return flat, []
