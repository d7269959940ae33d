"""The imported layers written as a kbuilder spec: YAML text, one layer a line.

Every layer keeps its Keras name (weights then load by name); a layer names its `inputs`
only when it does not simply take the line above it, as a hand-written spec does. Folded
runs (kbuilder.importer.folding) are written as a `repeat` or as block uses, both with
`prefix: false` so that the names stay Keras's.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import yaml

from kbuilder.importer.keras_graph import KerasGraph

if TYPE_CHECKING:  # folding imports SpecLayer from here: the type only, to avoid a cycle
    from kbuilder.importer.folding import Fold

NAME_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,119}$")
IDENTIFIER_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,119}$")
CHAIN = "<chain>"  # in a folded body: the layer takes the fold's input, and says nothing


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


def _fold_lines(fold: Fold) -> list[str]:
    """A fold's lines in `layers:` (a `repeat` with its body, or one line per block use)."""
    if fold.uses:
        return [
            "  - block: " + _flow({"use": fold.name, "name": name, "prefix": False, "args": args})
            for name, args in fold.uses
        ]
    lines = ["  - repeat:", f"      name: {fold.name}", f"      times: {fold.run.times}"]
    return lines + ["      prefix: false", "      layers:"] + _body(fold, "        ")


def _body(fold: Fold, indent: str) -> list[str]:
    lines, previous = [], CHAIN
    for layer in fold.body:
        lines.append(indent + layer_line(layer, previous))
        previous = layer.name
    return lines


def _block_lines(folds: list[Fold]) -> list[str]:
    lines = []
    for fold in folds:
        if fold.uses:
            params = _flow({param: None for param in fold.params})
            lines += [f"  {fold.name}:", f"    params: {params}", "    layers:"] + _body(fold, "      ")
    return ["blocks:"] + lines if lines else []


def spec_text(
    graph: KerasGraph, layers: list[SpecLayer], description: str, folds: Sequence[Fold] = ()
) -> str:
    """The spec as YAML text: one line per layer, each fold in `folds` written once."""
    head: dict[str, Any] = {
        "name": spec_name(graph.name),
        "description": description,
    }
    lines = [yaml.safe_dump(head, sort_keys=False, width=10**9).rstrip(), "inputs:"]
    for name, shape in graph.inputs.items():
        lines.append(f"  {name}: {_flow({'shape': shape})}")
    lines += _block_lines(list(folds))
    lines.append("layers:")
    previous = next(iter(graph.inputs)) if len(graph.inputs) == 1 else None
    starts = {fold.run.start: fold for fold in folds}
    i = 0
    while i < len(layers):
        if i in starts:
            lines += _fold_lines(starts[i])
            i = starts[i].run.end
        else:
            lines.append("  " + layer_line(layers[i], previous))
            i += 1
        previous = layers[i - 1].name
    if graph.outputs != [previous]:
        lines.append(f"outputs: {_flow(graph.outputs)}")
    return "\n".join(lines) + "\n"
