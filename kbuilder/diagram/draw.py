"""One diagram from a spec: expand (or build, for shapes), lay out, write the file."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kbuilder.diagram.dot import to_dot
from kbuilder.diagram.html import to_html
from kbuilder.diagram.render import check_target, render, write_atomically
from kbuilder.diagram.structure import Diagram, check_fold, make_diagram
from kbuilder.errors import UsageError
from kbuilder.graph import Graph, expand
from kbuilder.spec import LoadedSpec


def _shape(tensor: Any) -> list:
    return [None if d is None else int(d) for d in tuple(tensor.shape)[1:]]


def layer_shapes(built: Any) -> dict[str, list]:
    """Each layer's output shape (batch axis dropped) from a `kbuilder.build.BuiltModel`."""
    layers = {layer.name: layer for layer in built.model.layers}
    shapes: dict[str, list] = {}
    for node in built.graph.nodes:
        if node.kind == "input":
            shapes[node.name] = list(node.spec.shape)
            continue
        output = layers[node.name].output
        shapes[node.name] = (
            [_shape(t) for t in output] if isinstance(output, (list, tuple)) else _shape(output)
        )
    return shapes


def graph_and_shapes(loaded: LoadedSpec, shapes: bool) -> tuple[Graph, dict[str, list]]:
    """The expanded graph; with `shapes`, the model is built (Keras) to read every shape."""
    if not shapes:
        return expand(loaded), {}
    from kbuilder.build import build  # Keras: only when shapes are drawn (--no-shapes skips it)

    built = build(loaded)
    return built.graph, layer_shapes(built)


def draw(
    loaded: LoadedSpec,
    path: Path | None = None,
    *,
    collapse: bool = False,
    depth: int | None = None,
    shapes: bool = True,
    fold: Sequence[str] = (),
) -> tuple[Diagram, str]:
    """The diagram and its DOT text; writes `path` (format from its extension) when given."""
    if depth is not None and depth < 0:
        raise UsageError(f"--depth must be 0 or more, got {depth}")
    fmt = check_target(path) if path is not None else None  # refuse a bad name before any work
    if fold and shapes:
        check_fold(expand(loaded), fold)  # a misspelt --fold is answered before the build
    graph, found = graph_and_shapes(loaded, shapes)
    diagram = make_diagram(graph, found, collapse=collapse, depth=depth, fold=fold)
    dot_text = to_dot(diagram)
    if path is not None and fmt == "html":
        write_atomically(path, to_html(diagram, render(dot_text, "svg")))
    elif path is not None and fmt is not None:
        write_atomically(path, render(dot_text, fmt))
    return diagram, dot_text
