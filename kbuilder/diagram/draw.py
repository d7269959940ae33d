"""One diagram from a spec: expand, take each layer's output shape from the spec's rules
(from the model Keras builds only where those cannot tell), lay out, write the file."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kbuilder.backend import before_keras
from kbuilder.diagram.details import check_detail
from kbuilder.diagram.dot import to_dot
from kbuilder.diagram.html import to_html
from kbuilder.diagram.render import READABLE_PIXELS, check_target, drawing_pixels, render, write_atomically
from kbuilder.diagram.structure import Diagram, check_fold, make_diagram
from kbuilder.errors import UsageError
from kbuilder.graph import Graph, expand
from kbuilder.graph.figures import static_figures
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


def layer_params(built: Any) -> dict[str, int]:
    """Each layer's weight count from a `kbuilder.build.BuiltModel`."""
    layers = {layer.name: layer for layer in built.model.layers}
    return {node.name: layers[node.name].count_params() for node in built.graph.nodes if node.kind != "input"}


def static_layer_shapes(
    graph: Graph, params: dict[str, int] | None = None
) -> tuple[dict[str, list], str | None]:
    """Each layer's output shape (batch axis dropped) from the spec's rules (no Keras), and
    a note naming the first layer whose shape is beyond them (then the shapes are incomplete).
    Fills `params` with each layer's weight count, where given."""
    figures = static_figures(graph)  # the spec validated with its shapes: no problem is left
    shapes: dict[str, list] = {}
    for node in graph.nodes:
        shape = figures[node.name].shape
        counted = figures[node.name].params
        if params is not None and counted is not None and node.kind != "input":
            params[node.name] = counted.total
        if shape is None:
            return shapes, (
                f"{node.location.prefix()}: layer '{node.name}' ({node.kind}): its output shape is beyond "
                "the spec's rules, so the diagram's shapes come from the model Keras builds"
            )
        shapes[node.name] = list(shape[1:])
    return shapes, None


def graph_and_shapes(
    loaded: LoadedSpec, shapes: bool, fold: Sequence[str] = (), params: dict[str, int] | None = None
) -> tuple[Graph, dict, list[str]]:
    """The expanded graph, each layer's output shape (none without `shapes`) and notes: the
    shapes come from the spec's rules, from the model Keras builds where those cannot tell.
    Fills `params` with each layer's weight count (where given, and with `shapes`)."""
    graph = expand(loaded)
    if fold:
        check_fold(graph, fold)  # a misspelt --fold is answered before any work
    if not shapes:
        return graph, {}, []
    found, note = static_layer_shapes(graph, params)
    if note is None:
        return graph, found, []
    before_keras()
    from kbuilder.build import build  # Keras: only for a layer beyond its kind's rules

    built = build(loaded)
    if params is not None:
        params.clear()
        params.update(layer_params(built))
    return built.graph, layer_shapes(built), [note]


def draw(
    loaded: LoadedSpec,
    path: Path | None = None,
    *,
    collapse: bool = False,
    depth: int | None = None,
    shapes: bool = True,
    fold: Sequence[str] = (),
    detail: str = "normal",
    rankdir: str = "TB",
) -> tuple[Diagram, str]:
    """The diagram and its DOT text; writes `path` (format from its extension) when given.
    `detail` says what boxes show (kbuilder.diagram.details), `rankdir` the direction."""
    if depth is not None and depth < 0:
        raise UsageError(f"--depth must be 0 or more, got {depth}")
    check_detail(detail)
    fmt = check_target(path) if path is not None else None  # refuse a bad name before any work
    params: dict[str, int] = {}
    graph, found, notes = graph_and_shapes(loaded, shapes, fold, params)
    diagram = make_diagram(
        graph, found, collapse=collapse, depth=depth, fold=fold, params=params, detail=detail, rankdir=rankdir
    )
    diagram.notes = notes
    dot_text = to_dot(diagram)
    if path is not None and fmt == "html":
        svg = render(dot_text, "svg")
        write_atomically(path, to_html(diagram, svg))
        diagram.notes += size_notes(graph, diagram, drawing_pixels(svg, "svg"))
    elif path is not None and fmt is not None:
        data = render(dot_text, fmt)
        write_atomically(path, data)
        diagram.notes += size_notes(graph, diagram, drawing_pixels(data, fmt))
    return diagram, dot_text


def size_notes(graph: Graph, diagram: Diagram, pixels: tuple[int, int] | None) -> list[str]:
    """A note when the drawing is too long to read in one image, with the options that
    draw it shorter (and how many boxes --collapse would leave)."""
    if pixels is None or max(pixels) <= READABLE_PIXELS:
        return []
    width, height = pixels
    fewer = len(make_diagram(graph, collapse=True).boxes)
    hints = []
    if fewer < len(diagram.boxes):
        hints.append(f"--collapse ({fewer} boxes instead of {len(diagram.boxes)})")
    if diagram.groups:
        hints.append("--depth 1")
    if diagram.detail != "minimal":
        hints.append("--detail minimal")
    if diagram.rankdir in ("TB", "BT") and height > width:
        hints.append("--rankdir LR (as wide as it is now long)")
    note = (
        f"the drawing is {width:,} × {height:,} pixels, too long to read in one image; "
        f"draw it smaller with {' or '.join(hints) or 'fewer layers'}"
    )
    return [note]
