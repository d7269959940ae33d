"""Layer graph -> what a diagram shows: boxes, arrows and labelled groups (pure Python).

Every layer is a box unless it sits in a composite that is collapsed; a collapsed
composite is one box standing for all its layers. Composites that stay open are
groups (DOT clusters) around their boxes. Nothing here imports Keras or runs `dot`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from functools import lru_cache

from kbuilder.diagram.details import arguments, check_detail
from kbuilder.errors import UsageError, did_you_mean
from kbuilder.graph.graph import SEP, Graph

RANKDIRS = ("TB", "LR", "BT", "RL")
_BLOCK_USE = re.compile(r"in block '([^']+)' used at ")


@dataclass
class Box:
    """One drawn node: a layer, or a collapsed composite standing for its layers."""

    id: str  # the layer's or composite's full name (unique in the graph)
    label: str  # the name inside its enclosing group
    kind: str  # layer kind, or the composite's kind ("bottleneck" for a block)
    shape: list | None  # output shape without the batch axis; None when not computed
    group: tuple[str, ...]  # enclosing open composites, outermost first
    layers: int = 1  # how many layers it stands for
    collapsed: bool = False
    arguments: list[str] = field(default_factory=list)  # "filters 64", by --detail level
    params: int | None = None  # its weights (a collapsed box: all its layers'); None: unknown


@dataclass
class Diagram:
    """Boxes in topological order, arrows between box ids and the open groups' labels."""

    name: str
    boxes: list[Box]
    edges: list[tuple[str, str]]
    groups: dict[str, str] = field(default_factory=dict)  # open composite -> its label
    outputs: list[str] = field(default_factory=list)  # box ids of the model's outputs
    notes: list[str] = field(default_factory=list)  # where the shapes came from Keras, and why
    detail: str = "normal"  # kbuilder.diagram.details.DETAILS
    rankdir: str = "TB"  # Graphviz's: TB draws top to bottom, LR left to right

    def counts(self) -> dict[str, int]:
        return {
            "boxes": len(self.boxes),
            "collapsed_boxes": sum(b.collapsed for b in self.boxes),
            "layers": sum(b.layers for b in self.boxes),
            "edges": len(self.edges),
            "groups": len(self.groups),
        }


def short_name(name: str, parent: str) -> str:
    """`conv2_x-block1` inside `conv2_x` reads `block1`."""
    return name[len(parent) + len(SEP) :] if parent and name.startswith(parent + SEP) else name


def composite_kinds(graph: Graph) -> dict[str, str]:
    """Each composite's kind; a block shows the block it uses (`bottleneck`), read from the
    block call stack that expansion writes into each layer's context (innermost first)."""
    kinds = {name: kind for name, (kind, _) in graph.groups.items()}
    for node in graph.nodes:
        uses = list(reversed(_BLOCK_USE.findall(node.context)))  # outermost first
        block_groups = [g for g in node.group if graph.groups.get(g, ("",))[0] == "block"]
        for group, use in zip(block_groups, uses):
            kinds[group] = use
    return kinds


class Nesting:
    """Which composites hold which: decides where collapsing stops."""

    def __init__(self, graph: Graph):
        self.children: dict[str, set[str]] = {}
        self.direct: dict[str, int] = {}  # layers directly inside, not in a nested composite
        for node in graph.nodes:
            for depth, group in enumerate(node.group):
                self.children.setdefault(group, set())
                if depth + 1 < len(node.group):
                    self.children[group].add(node.group[depth + 1])
                else:
                    self.direct[group] = self.direct.get(group, 0) + 1
        self.innermost = lru_cache(maxsize=None)(self._innermost)

    def _innermost(self, group: str) -> bool:
        """No composite inside, looking through wrappers: a block whose whole body is one
        residual is one unit (ResNet's bottleneck), so both collapse into one box."""
        children = self.children.get(group, set())
        if not self.direct.get(group) and len(children) == 1:
            return self.innermost(next(iter(children)))
        return not children


def collapse_point(
    group: tuple[str, ...], nesting: Nesting, collapse: bool, depth: int | None, folded: Callable[[str], bool]
) -> int | None:
    """Index in `group` of the composite a layer is drawn as, or None to draw the layer."""
    for index, name in enumerate(group):
        if (depth is not None and index >= depth) or (collapse and nesting.innermost(name)) or folded(name):
            return index
    return None


def check_fold(graph: Graph, fold: Collection[str]) -> None:
    """Every name given to fold must be a block or composite kind the spec uses."""
    known = set(composite_kinds(graph).values()) | {kind for kind, _ in graph.groups.values()}
    unknown = [name for name in fold if name not in known]
    if unknown:
        choices = ", ".join(sorted(known)) or "none: the spec has no blocks or composites"
        raise UsageError(
            f"--fold {unknown[0]}: the spec uses no block or composite of that name"
            f"{did_you_mean(unknown[0], known)} (it uses: {choices})"
        )


def make_diagram(
    graph: Graph,
    shapes: dict[str, list] | None = None,
    *,
    collapse: bool = False,
    depth: int | None = None,
    fold: Collection[str] = (),
    params: dict[str, int] | None = None,
    detail: str = "normal",
    rankdir: str = "TB",
) -> Diagram:
    """The diagram of an expanded graph. `collapse` draws each innermost composite as one
    box; `depth` keeps that many levels of composites open and collapses deeper ones;
    `fold` names blocks (`bottleneck`) or composite kinds (`inception`) drawn as one box
    each. Where several rules apply to a layer, the outermost composite wins. `params`
    (layer -> weights) and `detail` decide what boxes say beyond name, kind and shape."""
    shapes = shapes or {}
    check_detail(detail)
    if rankdir not in RANKDIRS:
        raise UsageError(f"--rankdir {rankdir}: choose one of {', '.join(RANKDIRS)}")
    counts = params or {}
    shown = detail != "minimal"
    kinds = composite_kinds(graph)
    check_fold(graph, fold)
    fold = set(fold)

    def folded(group: str) -> bool:
        return kinds.get(group) in fold or graph.groups.get(group, ("",))[0] in fold

    nesting = Nesting(graph)
    box_of: dict[str, str] = {}
    boxes: dict[str, Box] = {}
    groups: dict[str, str] = {}
    for node in graph.nodes:
        point = collapse_point(node.group, nesting, collapse, depth, folded)
        if point is None:
            box_id, enclosing = node.name, node.group
            boxes[box_id] = Box(
                box_id,
                short_name(node.name, enclosing[-1] if enclosing else ""),
                node.kind,
                shapes.get(node.name),
                enclosing,
                arguments=arguments(node.spec, node.kind, detail),
                params=counts.get(node.name) if shown else None,
            )
        else:
            box_id, enclosing = node.group[point], node.group[:point]
            if box_id not in boxes:
                output = graph.resolve(box_id)
                boxes[box_id] = Box(
                    box_id,
                    short_name(box_id, enclosing[-1] if enclosing else ""),
                    kinds.get(box_id, "block"),
                    shapes.get(output),
                    enclosing,
                    layers=0,
                    collapsed=True,
                    params=0 if shown and node.name in counts else None,
                )
            boxes[box_id].layers += 1
            if boxes[box_id].params is not None:
                boxes[box_id].params = (boxes[box_id].params or 0) + counts.get(node.name, 0)
        box_of[node.name] = box_id
        for index, group in enumerate(enclosing):
            parent = enclosing[index - 1] if index else ""
            groups.setdefault(group, f"{short_name(group, parent)} ({kinds.get(group, 'block')})")
    edges: dict[tuple[str, str], None] = {}  # ordered and without repeats
    for node in graph.nodes:
        for source in node.inputs:
            edge = (box_of[source], box_of[node.name])
            if edge[0] != edge[1]:
                edges[edge] = None
    outputs = list(dict.fromkeys(box_of[name] for name in graph.outputs))
    return Diagram(
        graph.name, list(boxes.values()), list(edges), groups, outputs, detail=detail, rankdir=rankdir
    )
