"""The build without Keras: the graph walked in the order the builder builds it, through the
same shape checks and parameter budget, every node's figures (output shape, parameters with
their trainable split, MACs, receptive field) from its kind's rules in kbuilder/spec/layers/
instead of from a Keras layer. `kbuilder build` and `check` tabulate it
(kbuilder.report.static) and import Keras only when a model object is needed.

It fails where the Keras build fails and says so in the same words: at the first node with a
shape problem (kbuilder.graph.shapes.node_problem, which the Keras builder asks too) or over
the parameter budget, the error carrying `partial`, the StaticModel of the nodes before it
(the table up to the failing layer). A node whose figures the rules cannot tell (an unknown
channel count, arithmetic beyond them) ends the walk without an error: the model is then
incomplete, and its table comes from the model Keras builds.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from kbuilder.build.budget import BuildBudget
from kbuilder.errors import BuildError, Problem, SpecError
from kbuilder.graph.figures import FieldWalk, NodeFigures, node_macs, node_params
from kbuilder.graph.graph import Graph, Node
from kbuilder.graph.shapes import node_problem
from kbuilder.spec import LoadedSpec
from kbuilder.spec.figures import TensorShape

# Beyond a rule's arithmetic (a rank it does not expect, a size it cannot divide): unknown, as
# in the static shape walk, so Keras decides.
_BEYOND_RULES = (TypeError, ValueError, IndexError, ZeroDivisionError, KeyError, AttributeError)


@dataclass
class StaticModel:
    """A spec's model as its rules see it: the nodes walked (bound to their input's channel
    count where they use `${in_channels}`, as built) and each one's figures."""

    graph: Graph
    loaded: LoadedSpec | None
    figures: dict[str, NodeFigures] = field(default_factory=dict)
    unknown: Node | None = None  # the first node the rules cannot tell: the rest need Keras
    unknown_inputs: list[TensorShape] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Whether every node has its figures (else the table needs the Keras model)."""
        return self.unknown is None

    @property
    def file(self) -> str:
        if self.loaded is not None:
            return self.loaded.file
        return self.graph.nodes[0].location.file if self.graph.nodes else ""

    def fallback_note(self) -> str:
        """Why the table of an incomplete model comes from Keras (one line, located)."""
        node = self.unknown
        if node is None:
            return ""
        received = ", ".join(str(tuple(s)) for s in self.unknown_inputs) or "unknown"
        return (
            f"{node.location.prefix()}: layer '{node.name}' ({node.kind}) on input {received}: "
            "its figures are beyond the spec's rules, so the table comes from the model Keras builds"
        )


def static_build(
    graph: Graph, loaded: LoadedSpec | None = None, max_params: int | None = None
) -> StaticModel:
    """Walk `graph` as kbuilder.build.build_graph builds it, without Keras. A shape problem
    raises BuildError, a model over `max_params` ModelTooLarge (both located, both carrying
    `partial`: the StaticModel of the nodes before the failing one, or None)."""
    walk = _Walk(graph, max_params)
    try:
        for node in graph.nodes:
            if not walk.add(node):
                return walk.model(graph, loaded, unknown=node)
    except SpecError as exc:
        exc.partial = walk.model(graph, loaded, partial=True) if walk.nodes else None  # type: ignore[attr-defined]
        raise
    return walk.model(graph, loaded)


class _Walk:
    """The nodes walked so far, their shapes and figures."""

    def __init__(self, graph: Graph, max_params: int | None):
        self.budget = BuildBudget(graph, max_params)  # refuses a too long chain now, as the build does
        self.shapes: dict[str, TensorShape] = {}
        self.fields = FieldWalk()
        self.nodes: list[Node] = []
        self.figures: dict[str, NodeFigures] = {}
        self.unknown_inputs: list[TensorShape] = []

    def add(self, node: Node) -> bool:
        """Walk one node; False when the rules cannot tell its figures."""
        if node.kind == "input":
            shape: TensorShape = (None, *node.spec.shape)
            self._keep(node, NodeFigures(shape, node_params(node, []), 0, self.fields.add(node, [])))
            return True
        inputs = [self.shapes[name] for name in (*node.inputs, *node.shape_refs)]
        self.unknown_inputs = inputs
        if node.rebind is not None:
            if inputs[0][-1] is None:
                return False
            node = replace(node, spec=node.rebind(int(inputs[0][-1])))  # the spec's own located error
        try:
            problem = node_problem(node, inputs)
        except _BEYOND_RULES:
            return False
        if problem:
            raise BuildError([Problem(node.location, problem, node.context)])
        count = len(node.inputs)
        self.budget.weigh_shapes(node, inputs[:count], inputs[count] if node.shape_refs else None)
        try:
            output = node.spec.output_shape(inputs)
            if output is None or any(d is not None and d <= 0 for d in output[1:]):
                return False
            figures = NodeFigures(
                tuple(None if d is None else int(d) for d in output),
                node_params(node, inputs),
                node_macs(node, inputs, output),
                self.fields.add(node, inputs),
            )
        except _BEYOND_RULES:
            return False
        self._keep(node, figures)
        return True

    def _keep(self, node: Node, figures: NodeFigures) -> None:
        self.nodes.append(node)
        self.shapes[node.name] = figures.shape  # type: ignore[assignment]  # never None once kept
        self.figures[node.name] = figures

    def model(
        self, graph: Graph, loaded: LoadedSpec | None, *, unknown: Node | None = None, partial: bool = False
    ) -> StaticModel:
        """The model of the nodes walked; `partial` (a failed build): every layer is an output,
        as kbuilder.build.model.partial_model makes it."""
        figures = self.figures
        if not self.fields.windowed:  # no windows anywhere (an MLP): receptive fields say nothing
            figures = {name: replace(f, receptive_field=None) for name, f in figures.items()}
        if partial:
            inputs = [n.name for n in self.nodes if n.kind == "input"]
            outputs = [n.name for n in self.nodes if n.kind != "input"] or inputs
            walked = Graph(graph.name, list(self.nodes), inputs, outputs, graph.aliases, graph.groups)
        else:
            walked = replace(graph, nodes=list(self.nodes))
        return StaticModel(walked, loaded, figures, unknown, self.unknown_inputs if unknown else [])
