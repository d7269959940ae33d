"""Channel counts known from the spec alone, while the graph is being expanded.

`${in_channels}` in a plain layer's arguments is bound at build time, from the real
input tensor. A composite's arguments (a block's `args`, a repeat's `times`) shape the
layers it expands into, so they need the number earlier: an inverted-residual block's
expansion width is `t * in_channels`. Each spec says what its output channel count is
from its inputs' (`LayerSpec.out_channels`): convolutions their filters, merges the sum
or the broadcast size, most layers pass it through. Where the spec cannot tell (after a
`flatten`), the count is unknown and the user gets a located error asking for a number.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kbuilder.errors import Location, Problem, SpecError
from kbuilder.graph.graph import Node


class ChannelCounts:
    """Output channel counts of the nodes expanded so far, computed incrementally: nodes
    are appended in expansion order and read only earlier nodes, so one pass suffices."""

    def __init__(self, nodes: list[Node], inputs_of: Callable[[Node], list[str | None]]):
        self.nodes = nodes
        self.inputs_of = inputs_of  # resolved input names of a node (None: not defined yet)
        self.counts: dict[str, int | None] = {}
        self.done = 0

    def of(self, name: str) -> int | None:
        while self.done < len(self.nodes):
            node = self.nodes[self.done]
            self.counts[node.name] = self._count(node)
            self.done += 1
        return self.counts.get(name)

    def require(self, name: str | None, location: Location, context: str, kind: str) -> int:
        """The count of `name`'s output, or a located error asking the user for a number."""
        count = self.of(name) if name is not None else None
        if count is None:
            raise SpecError(
                [
                    Problem(
                        location,
                        f"`${{in_channels}}` in the arguments of a {kind} needs its input's channel count, which the spec "
                        "does not tell before building (after a flatten or a reshape to -1, say); write the number instead",
                        context,
                    )
                ]
            )
        return count

    def _count(self, node: Node) -> int | None:
        inputs = [self.counts.get(n) if n is not None else None for n in self.inputs_of(node)]
        spec: Any = node.spec
        if node.rebind is not None:
            # A plain layer with `${in_channels}`: validated with a stand-in until now.
            if not inputs or inputs[0] is None:
                return None
            try:
                spec = node.rebind(inputs[0])
            except SpecError:  # reported where the layer is built
                return None
        if hasattr(spec, "out_channels"):
            return spec.out_channels(inputs)
        shape = getattr(spec, "shape", None)  # a model input declared under `inputs:`
        return shape[-1] if shape else None
