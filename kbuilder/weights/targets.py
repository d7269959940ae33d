"""The spec's weighted layers as the built model holds them: what a source must supply.

Each graph node is one Keras layer of the same name (kbuilder.build); a composite spec layer
(block, residual, inception, branches) expanded into several, each matched on its own. A Keras
layer made of sublayers (multi-head attention) names each variable by its path
(`mha/query/kernel`): `key` is that path in a Keras 3 weights file's terms (`query/vars/0`),
so a file's tensors find their variables whatever order its groups are listed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from kbuilder.graph import Graph, Node


@dataclass(frozen=True)
class Variable:
    name: str  # the variable's own name (kernel, bias, moving_mean, ...)
    key: str  # its place in a Keras 3 weights file, relative to the layer: `vars/0`, `query/vars/1`
    shape: tuple[int, ...]
    dtype: np.dtype


@dataclass(frozen=True)
class Target:
    """One weighted spec layer: its node (where the spec wrote it) and its Keras variables in
    the order of `layer.get_weights()`."""

    node: Node
    layer: Any
    variables: tuple[Variable, ...]

    @property
    def name(self) -> str:
        return self.node.name

    @property
    def names(self) -> tuple[str, ...]:
        """The layer's name and its enclosing blocks' (what include/exclude globs may name)."""
        return (self.node.name, *self.node.group)

    @property
    def shapes(self) -> tuple[tuple[int, ...], ...]:
        return tuple(v.shape for v in self.variables)


def _variables(layer: Any) -> tuple[Variable, ...]:
    own_count: dict[str, int] = {}
    out = []
    for variable in layer.weights:
        parts = str(variable.path).split("/")
        inner = parts[1:-1] if parts[0] == layer.name and len(parts) > 1 else parts[:-1]
        prefix = "/".join(inner)
        index = own_count.get(prefix, 0)
        own_count[prefix] = index + 1
        key = f"{prefix}/vars/{index}" if prefix else f"vars/{index}"
        shape = tuple(int(d) for d in variable.shape)
        out.append(Variable(parts[-1], key, shape, np.dtype(variable.dtype)))
    return tuple(out)


def weighted_targets(model: Any, graph: Graph) -> list[Target]:
    """Every spec layer with weights, in the graph's (the model's) order."""
    layers = {layer.name: layer for layer in model.layers}
    targets = []
    for node in graph.nodes:
        layer = layers.get(node.name)
        if layer is not None and layer.weights:
            targets.append(Target(node, layer, _variables(layer)))
    return targets
