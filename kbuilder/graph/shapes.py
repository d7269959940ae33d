"""Static shapes: the output shape of every node computed from the spec alone (no Keras),
so `validate` finds the shape mistakes `build` would: a window larger than its input,
a merge of unequal shapes, cropping that leaves nothing, a projection with no stride.

The walk is here; each kind's rule is its spec's `output_shape` (kbuilder/spec/layers/).
Shapes carry the batch axis as None, as Keras's do. A kind whose spec cannot tell its
output shape (or a shape this arithmetic cannot follow) makes its output unknown, and the
nodes after it are not checked: the pass never refuses what Keras would build.
tests/test_static_shapes.py compares these shapes with Keras's for every layer example
and bundled spec.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from kbuilder.errors import BuildError, Problem
from kbuilder.graph.checks import merge_problem, projection_problem, shape_problem
from kbuilder.graph.graph import Graph, Node
from kbuilder.spec.figures import TensorShape
from kbuilder.spec.layers.merge import MERGE_KINDS


@dataclass
class ShapeWalk:
    """What the walk learns: every node's output shape (None where unknown), and the nodes
    as built, their spec bound to the input's channel count where it uses `${in_channels}`."""

    shapes: dict[str, TensorShape | None] = field(default_factory=dict)
    nodes: dict[str, Node] = field(default_factory=dict)

    def inputs(self, node: Node) -> list[TensorShape] | None:
        """The shapes a node's figures read (its inputs, then the tensors it matches:
        a projection's body output); None when one is unknown."""
        shapes = [self.shapes.get(name) for name in (*node.inputs, *node.shape_refs)]
        known = [s for s in shapes if s is not None]
        return known if known and len(known) == len(shapes) else None


def node_problem(node: Node, shapes: list[TensorShape]) -> str | None:
    """The shape mistake `node` makes on these input shapes, in the spec's words."""
    if node.kind in MERGE_KINDS:
        return merge_problem(node.kind, node.name, list(shapes), getattr(node.spec, "axis", -1))
    if node.kind == "projection":
        return projection_problem(node.name, shapes[0], shapes[1])
    return shape_problem(node.kind, node.name, node.spec, shapes[0]) or node.spec.input_problem(
        node.name, list(shapes)
    )


def _node_shape(node: Node, shapes: list[TensorShape]) -> tuple[TensorShape | None, str | None]:
    """(output shape or None if unknown, problem or None) of one node."""
    problem = node_problem(node, shapes)
    if problem:
        return None, problem
    return node.spec.output_shape(shapes), None


def walk_shapes(graph: Graph) -> ShapeWalk:
    """Every node's output shape; raises BuildError with every shape problem found, located
    at its layer."""
    walk = ShapeWalk()
    problems: list[Problem] = []
    for node in graph.nodes:
        if node.kind == "input":
            walk.shapes[node.name], walk.nodes[node.name] = (None, *node.spec.shape), node
            continue
        shapes = walk.inputs(node)
        if shapes is None:
            walk.shapes[node.name] = None
            continue
        if node.rebind is not None and shapes[0][-1] is not None:
            node = replace(node, spec=node.rebind(int(shapes[0][-1])))  # raises the spec's own located error
        walk.nodes[node.name] = node
        try:
            shape, problem = _node_shape(node, shapes)
        except (TypeError, ValueError, IndexError, ZeroDivisionError):
            shape, problem = None, None  # beyond this arithmetic: Keras will tell
        if problem:
            problems.append(Problem(node.location, problem, node.context))
        positive = shape is not None and all(d is None or d > 0 for d in shape[1:])
        walk.shapes[node.name] = shape if positive else None
    if problems:
        raise BuildError(problems)
    return walk


def static_shapes(graph: Graph) -> dict[str, TensorShape | None]:
    """Every node's output shape (None where unknown); raises BuildError with every
    shape problem found, located at its layer."""
    return walk_shapes(graph).shapes
