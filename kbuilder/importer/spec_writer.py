"""The imported layers written as a kbuilder spec: YAML text, one layer a line.

Every layer keeps its Keras name (weights then load by name); a layer names its `inputs`
only when it does not simply take the line above it, as a hand-written spec does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

from kbuilder.importer.keras_graph import KerasGraph

NAME_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,119}$")
IDENTIFIER_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,119}$")


@dataclass
class SpecLayer:
    """One spec entry: kind, Keras name, the layers it takes and its arguments."""

    kind: str
    name: str
    inputs: list[str]
    args: dict[str, Any]


def spec_name(name: str) -> str:
    """A valid spec name from the Keras model's name (not used to match weights)."""
    cleaned = re.sub(r"[^A-Za-z0-9_-]", "_", name).lstrip("-")[:120]
    return cleaned or "imported"


def _flow(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True, width=10**9, sort_keys=False).strip()


def layer_line(layer: SpecLayer, previous: str | None) -> str:
    args: dict[str, Any] = {"name": layer.name}
    if layer.inputs != ([previous] if previous else []) or len(layer.inputs) > 1:
        args["inputs"] = layer.inputs[0] if len(layer.inputs) == 1 else layer.inputs
    args.update(layer.args)
    return f"- {layer.kind}: {_flow(args)}"


def spec_text(graph: KerasGraph, layers: list[SpecLayer], description: str) -> str:
    """The spec as YAML text (flat: one line per layer)."""
    head: dict[str, Any] = {
        "name": spec_name(graph.name),
        "description": description,
    }
    lines = [yaml.safe_dump(head, sort_keys=False, width=10**9).rstrip(), "inputs:"]
    for name, shape in graph.inputs.items():
        lines.append(f"  {name}: {_flow({'shape': shape})}")
    lines.append("layers:")
    previous = next(iter(graph.inputs)) if len(graph.inputs) == 1 else None
    for layer in layers:
        lines.append("  " + layer_line(layer, previous))
        previous = layer.name
    if graph.outputs != [previous]:
        lines.append(f"outputs: {_flow(graph.outputs)}")
    return "\n".join(lines) + "\n"
