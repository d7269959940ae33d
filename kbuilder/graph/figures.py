"""Every node's figures from the spec alone (no Keras): output shape, parameters with their
trainable split, multiply-accumulates per sample and receptive field, each from the node's
spec kind (kbuilder/spec/layers/). The report asks the same per-node functions with the
built tensors' shapes; `static_figures` walks the shapes the spec implies, so the `build`
table can be computed without Keras where every shape is known.
"""

from __future__ import annotations

from dataclasses import dataclass

from kbuilder.graph.graph import Graph, Node
from kbuilder.graph.receptive import ReceptiveField, has_window, input_extent, propagate, start_field
from kbuilder.graph.shapes import walk_shapes
from kbuilder.spec.figures import Params, TensorShape


@dataclass(frozen=True)
class NodeFigures:
    """One node's static figures; `params` and `macs` are None where an input shape is unknown."""

    shape: TensorShape | None
    params: Params | None
    macs: int | None
    receptive_field: ReceptiveField | None


def node_params(node: Node, inputs: list[TensorShape]) -> Params:
    """The node's weights for these input shapes (its inputs, then its `shape_refs`); all
    non-trainable when the node is frozen."""
    if node.kind == "input":
        return Params()
    params = node.spec.params(inputs)
    return params.frozen() if node.frozen else params


def node_macs(node: Node, inputs: list[TensorShape], output: TensorShape) -> int:
    """Multiply-accumulates of the node for one sample."""
    return 0 if node.kind == "input" or not inputs else int(node.spec.macs(inputs, output))


class FieldWalk:
    """Receptive fields node by node, in graph order (each node's inputs come first)."""

    def __init__(self) -> None:
        self.fields: dict[str, ReceptiveField | None] = {}
        self.extents: dict[str, tuple[int, ...] | None] = {}
        self.windowed = False  # any layer with a window: else fields say nothing (an MLP)

    def add(self, node: Node, inputs: list[TensorShape] | None) -> ReceptiveField | None:
        """The node's field; `inputs` are its input shapes (None: unknown, the field passes)."""
        if node.kind == "input":
            field = start_field(node.spec)
            self.fields[node.name], self.extents[node.name] = field, input_extent(node.spec, field)
            return field
        step = node.spec.field_step(inputs) if inputs else None
        self.windowed = self.windowed or has_window(step)
        extent = next((self.extents[n] for n in node.inputs if self.extents.get(n)), None)
        self.extents[node.name] = extent
        field = propagate(step, [self.fields.get(n) for n in node.inputs], extent)
        self.fields[node.name] = field
        return field


def static_figures(graph: Graph) -> dict[str, NodeFigures]:
    """Every node's figures computed from the spec alone; raises BuildError with every shape
    problem found, as `validate` does."""
    walk = walk_shapes(graph)
    fields = FieldWalk()
    figures: dict[str, NodeFigures] = {}
    for node in graph.nodes:
        node = walk.nodes.get(node.name, node)
        inputs = [] if node.kind == "input" else walk.inputs(node)
        output = walk.shapes.get(node.name)
        field = fields.add(node, inputs)
        if inputs is None or output is None:
            figures[node.name] = NodeFigures(output, None, None, field)
        else:
            figures[node.name] = NodeFigures(
                output, node_params(node, inputs), node_macs(node, inputs, output), field
            )
    if not fields.windowed:  # no windows anywhere: receptive fields say nothing
        figures = {name: _without_field(f) for name, f in figures.items()}
    return figures


def _without_field(figures: NodeFigures) -> NodeFigures:
    return NodeFigures(figures.shape, figures.params, figures.macs, None)
