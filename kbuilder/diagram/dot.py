"""Diagram -> DOT text: boxes as nodes, open composites as nested labelled clusters.

Names and kinds come from an untrusted spec, so every string goes out quoted and
escaped; a node's DOT id is the layer's full name, which SVG output keeps as its title.
"""

from __future__ import annotations

from kbuilder.diagram.details import params_text
from kbuilder.diagram.structure import Box, Diagram

# Fill colours by what a layer does, so the eye finds convolutions, merges and heads.
_COLOURS = (
    (("input",), "#e0e0e0"),
    (("conv", "partial_conv", "projection", "depthwise", "separable"), "#cfe2ff"),
    (("batch_norm", "layer_norm", "lrn", "normalization"), "#fff3bf"),
    (("activation", "relu", "softmax", "scaled_tanh", "maxout", "hard_"), "#ffe8cc"),
    (("max_pooling", "average_pooling", "global_", "trainable_subsampling"), "#d3f9d8"),
    (("add", "concat", "multiply", "subtract", "average", "maximum", "minimum"), "#f3d9fa"),
    (("dense", "rbf", "embedding"), "#ffd8d8"),
)
_COLLAPSED = "#c5f6fa"
_OTHER = "#ffffff"


def quote(text: str) -> str:
    """A DOT string for a label or tooltip, where Graphviz reads escapes (\\N is the node's
    name, \\l a line break): backslashes are doubled so they stay themselves."""
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def quote_id(text: str) -> str:
    """A DOT string for a node or graph id. Graphviz's lexer reads a backslash and the
    next character as a pair, turns only \\" into a quote and keeps other pairs as they
    are; doubling backslashes keeps every id syntactically safe (one that holds a
    backslash shows it doubled; layer names are letters, digits, '_' and '-' anyway)."""
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'


def shape_text(shape: list | None) -> str:
    if not shape:
        return ""
    if isinstance(shape[0], list):  # several outputs
        return ", ".join(shape_text(s) for s in shape)
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + ")"


def fill(box: Box) -> str:
    if box.collapsed:
        return _COLLAPSED
    return next((colour for prefixes, colour in _COLOURS if box.kind.startswith(prefixes)), _OTHER)


def element_ids(diagram: Diagram) -> tuple[dict[str, str], dict[str, str]]:
    """SVG element ids (`n3`, `c1`) of boxes and groups; edges are `e<index>`. Short,
    safe ids that the HTML view's script finds the drawn elements by."""
    boxes = {box.id: f"n{index}" for index, box in enumerate(diagram.boxes)}
    groups = {group: f"c{index}" for index, group in enumerate(diagram.groups, start=1)}
    return boxes, groups


def node_line(box: Box, is_output: bool, element_id: str) -> str:
    kind = f"{box.kind} ({box.layers} layers)" if box.collapsed else box.kind
    lines = (
        [box.label]
        + ([kind] if kind != box.label else [])
        + box.arguments
        + ([shape_text(box.shape)] if box.shape else [])
        + ([params_text(box.params)] if box.params else [])
    )
    # The label's lines are escaped one by one and joined by DOT's own line break.
    label = "\\n".join(quote(line)[1:-1] for line in lines)
    attrs = [
        f'label="{label}"',
        f"fillcolor={quote(fill(box))}",
        f"tooltip={quote(box.id)}",
        f"id={element_id}",
    ]
    if box.collapsed:
        attrs.append('style="rounded,filled,bold"')
    if is_output:
        attrs.append("peripheries=2")
    return f"{quote_id(box.id)} [{', '.join(attrs)}];"


def to_dot(diagram: Diagram) -> str:
    """The whole diagram as one `digraph`, ready for `dot`."""
    outputs = set(diagram.outputs)
    tree: dict[tuple[str, ...], list[Box]] = {}
    for box in diagram.boxes:
        tree.setdefault(box.group, []).append(box)
    # Every open group, including ones that hold only nested groups.
    paths = {box.group[:i] for box in diagram.boxes for i in range(len(box.group) + 1)}
    lines = [
        f"digraph {quote_id(diagram.name)} {{",
        (
            f"  graph [rankdir={diagram.rankdir}, fontname=Helvetica, fontsize=11, nodesep=0.25, ranksep=0.3,"
            f" label={quote(diagram.name)}, labelloc=t];"
        ),
        '  node [shape=box, style="rounded,filled", fontname=Helvetica, fontsize=10, margin="0.1,0.03"];',
        "  edge [arrowsize=0.6];",
    ]
    box_ids, group_ids = element_ids(diagram)

    def emit(path: tuple[str, ...], indent: str) -> None:
        for box in tree.get(path, []):
            lines.append(indent + node_line(box, box.id in outputs, box_ids[box.id]))
        for child in sorted(
            (p for p in paths if len(p) == len(path) + 1 and p[:-1] == path), key=_first_index(diagram)
        ):
            group = child[-1]
            lines.append(f"{indent}subgraph cluster_{group_ids[group]} {{")
            lines.append(
                f'{indent}  label={quote(diagram.groups.get(group, group))}; style="rounded,dashed"; '
                f'color="#868e96"; labeljust=l; tooltip={quote(group)}; id={group_ids[group]};'
            )
            emit(child, indent + "  ")
            lines.append(indent + "}")

    emit((), "  ")
    lines += [
        f"  {quote_id(a)} -> {quote_id(b)} [id=e{index}];" for index, (a, b) in enumerate(diagram.edges)
    ]
    lines.append("}")
    return "\n".join(lines) + "\n"


def _first_index(diagram: Diagram):
    """Sort key: nested groups in the order their first box appears (spec order)."""
    first: dict[tuple[str, ...], int] = {}
    for index, box in enumerate(diagram.boxes):
        for i in range(1, len(box.group) + 1):
            first.setdefault(box.group[:i], index)
    return lambda path: first.get(path, 0)
