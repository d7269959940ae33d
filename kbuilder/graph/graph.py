"""The flat layer graph that expansion produces and the builder consumes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kbuilder.errors import Location, Problem

# Joins a composite's name to the names inside it (`stage-0-conv2d_1`). Not '.', which
# PyTorch forbids in module names, nor '/', which Keras reserves.
SEP = "-"


@dataclass
class Node:
    """One Keras layer to build: its kind, validated arguments and inputs."""

    name: str
    kind: str
    spec: Any  # the validated LayerSpec (or InputSpec for inputs)
    inputs: list[str]
    location: Location
    context: str = ""  # "in block 'vgg_block' used at layers[3]"
    group: tuple[str, ...] = ()  # enclosing composite names, outermost first
    # Extra tensors a builder reads for their shape only (a projection matches its body).
    shape_refs: list[str] = field(default_factory=list)
    # Re-validates the spec once the input's channel count is known (`${in_channels}`).
    rebind: Callable[[int], Any] | None = None
    frozen: bool = False  # `trainable: false` on the layer or an enclosing composite

    @property
    def line(self) -> int | None:
        return self.location.line


@dataclass
class Graph:
    """Nodes in topological order, model inputs and outputs, and composite aliases."""

    name: str
    nodes: list[Node]
    inputs: list[str]
    outputs: list[str]
    aliases: dict[str, str] = field(default_factory=dict)  # composite name -> its output node
    groups: dict[str, tuple[str, Location]] = field(default_factory=dict)  # composite -> (kind, where)
    warnings: list[Problem] = field(default_factory=list)  # located, they do not stop the build

    def node(self, name: str) -> Node:
        return self.by_name()[self.resolve(name)]

    def by_name(self) -> dict[str, Node]:
        return {n.name: n for n in self.nodes}

    def resolve(self, name: str) -> str:
        seen = set()
        while name in self.aliases and name not in seen:
            seen.add(name)
            name = self.aliases[name]
        return name

    def consumers(self) -> dict[str, list[str]]:
        result: dict[str, list[str]] = {n.name: [] for n in self.nodes}
        for n in self.nodes:
            for src in n.inputs:
                result.setdefault(src, []).append(n.name)
        return result
