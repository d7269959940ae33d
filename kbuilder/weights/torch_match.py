"""Matching a PyTorch state_dict to a built spec's layers: by the order of weighted layers, or
by an explicit map of globs, into a LoadPlan whose arrays are in Keras's layout.

A state_dict lists its modules in the model's order (`features.0.weight`, `features.0.bias`,
`features.3.weight`, ...); the spec's weighted layers, in the order the spec writes them (the
expanded graph's order: a residual block's projection shortcut after its body, as
torchvision's `downsample` follows `conv3`/`bn3`), are paired with the modules one by one. A
map (`{spec-layer-glob: module-glob}`) pairs the layers and modules its globs select first,
each entry in order; the rest pair by order. Every mismatch — a layer without a module, a
module left over, a tensor missing or extra, a shape that differs after conversion, a batch
norm epsilon other than the source's — is reported together, each located at its spec layer.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from kbuilder.errors import Location, Problem, SpecError
from kbuilder.graph import Graph
from kbuilder.graph.graph import Node
from kbuilder.weights.plan import LayerLoad, LoadPlan
from kbuilder.weights.tensors import SourceTensors
from kbuilder.weights.torch_convert import (
    NORMALIZATIONS,
    TORCH_NAMES,
    Module,
    convert,
    group_modules,
    is_supported,
)

TORCH_EPSILON = 1e-5  # nn.BatchNorm*d's and nn.LayerNorm's default; a state_dict does not record it
Noted = tuple[str, Problem]  # a problem and its kind ("epsilon", "no bias", ...), to merge repeats
PASS_THROUGH = ("dropout", "activation", "alpha_dropout", "gaussian_dropout", "gaussian_noise", "identity")


class WeightsMismatch(SpecError):
    """The source's tensors do not fit the spec's layers (exit 2, each problem at its layer)."""

    title = "weights do not fit the spec"


def match_torch(
    model: Any,
    source: SourceTensors,
    *,
    graph: Graph,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    mapping: Mapping[str, str] | None = None,
    epsilon: float | None = TORCH_EPSILON,
) -> LoadPlan:
    """The plan loading `source` (read by `read_torch`) into `model`, built from `graph`.

    `include`/`exclude` are globs over spec layer names: a layer not included is skipped, an
    excluded one keeps its initial weights (status `new`, a replaced head); both still take
    their place in the order, so the layers after them pair with the right modules.
    `epsilon` is the source's normalization epsilon, checked against every batch/layer norm
    of the spec; None skips the check."""
    nodes = graph.by_name()
    layers = _weighted_layers(model, graph)
    modules = group_modules(list(source.tensors))
    pairs, problems = _pair(layers, modules, mapping or {}, source.path)
    rows: list[LayerLoad] = []
    for name, module in pairs:
        if include and not _any_match(name, include):
            rows.append(LayerLoad(name, "skipped", note="not in include"))
        elif _any_match(name, exclude):
            rows.append(
                LayerLoad(name, "new", note=f"excluded; '{module.name}' not used" if module else "excluded")
            )
        elif module is None:
            problems.append(
                _at(
                    nodes,
                    name,
                    f"layer '{name}' has weights but the source has no module left for it; exclude it "
                    "if it is new (a head the source lacks) or pair it with `map`",
                    "no module",
                )
            )
        else:
            row = _load(model, nodes, name, module, source, epsilon, problems)
            if row is not None:
                rows.append(row)
    if problems:
        raise WeightsMismatch(_merged(problems))
    return LoadPlan(source.path, source.layout, "map" if mapping else "order", rows)


def _weighted_layers(model: Any, graph: Graph) -> list[str]:
    names = {layer.name for layer in model.layers if layer.weights}
    return [node.name for node in graph.nodes if node.name in names]


def _pair(
    layers: list[str], modules: list[Module], mapping: Mapping[str, str], path: str
) -> tuple[list[tuple[str, Module | None]], list[Noted]]:
    """Each weighted layer with its module (None when the source ran out), in the spec's order."""
    chosen: dict[str, Module] = {}
    problems: list[Noted] = []
    free = list(modules)
    for layer_glob, module_glob in mapping.items():
        picked = [name for name in layers if fnmatch.fnmatchcase(name, layer_glob) and name not in chosen]
        sources = [m for m in free if fnmatch.fnmatchcase(m.name, module_glob)]
        if len(picked) != len(sources):
            problems.append(
                (
                    "map",
                    Problem(
                        Location(path, path=f"map['{layer_glob}']"),
                        f"selects {len(picked)} weighted spec layers ({_names(picked)}) but '{module_glob}' "
                        f"selects {len(sources)} modules ({_names([m.name for m in sources])}); "
                        "the two must pair one to one",
                    ),
                )
            )
            continue
        chosen.update(zip(picked, sources, strict=True))
        free = [m for m in free if m not in sources]
    rest = iter(free)
    pairs = [(name, chosen[name] if name in chosen else next(rest, None)) for name in layers]
    left = list(rest)
    if left:
        problems.append(
            (
                "left over",
                Problem(
                    Location(path),
                    f"{len(left)} module(s) left over after the spec's {len(layers)} weighted layers: "
                    f"{_names([m.name for m in left])}; exclude the spec layers they replace, drop them "
                    "from the file, or pair them with `map`",
                ),
            )
        )
    return pairs, problems


def _load(
    model: Any,
    nodes: dict[str, Node],
    name: str,
    module: Module,
    source: SourceTensors,
    epsilon: float | None,
    problems: list[Noted],
) -> LayerLoad | None:
    """The layer's row, its weights converted from the module's tensors; None (and the
    problems noted) when they do not fit."""
    layer = model.get_layer(name)
    kind = nodes[name].kind if name in nodes else type(layer).__name__
    where = f"layer '{name}' ({kind}) <- torch module {module.describe(source.tensors)}"
    if not is_supported(layer):
        message = f"{where}: no PyTorch conversion for {type(layer).__name__}; exclude it or use `map`"
        problems.append(_at(nodes, name, message, "unsupported"))
        return None
    found = len(problems)
    normalization = isinstance(layer, NORMALIZATIONS)
    if normalization and epsilon is not None and not math.isclose(layer.epsilon, epsilon, rel_tol=1e-6):
        problems.append(_at(nodes, name, _epsilon_problem(name, kind, layer.epsilon, epsilon), "epsilon"))
    arrays, sources, notes = [], [], []
    flatten_input = _flatten_input(model, nodes, name)
    for weight in layer.weights:
        key = weight.name.rsplit("/", 1)[-1]
        tensor = module.tensors.get(TORCH_NAMES.get(key, key))
        if tensor is None:
            problems.append(
                _at(nodes, name, f"{where}: {_missing(name, key, TORCH_NAMES.get(key, key))}", f"no {key}")
            )
            continue
        sources.append(tensor)
        array, note = convert(layer, key, source.tensors[tensor], tuple(weight.shape), flatten_input)
        if tuple(array.shape) != tuple(weight.shape):
            converted = f" ({note}: {tuple(array.shape)})" if note else ""
            problems.append(
                _at(
                    nodes,
                    name,
                    f"layer '{name}' ({kind}) expects {key} of shape {tuple(weight.shape)}, torch tensor "
                    f"'{tensor}' has {tuple(source.tensors[tensor].shape)}{converted}",
                    f"shape {key}",
                )
            )
        arrays.append(array.astype(np.float32, copy=False))
        if note and note not in notes:
            notes.append(note)
    for extra in [tensor for tensor in module.tensors.values() if tensor not in sources]:
        fix = (
            "set `use_bias: true` on the layer"
            if extra.endswith(".bias")
            else "the layer has no weight for it"
        )
        problems.append(_at(nodes, name, f"{where}: torch tensor '{extra}' is not used: {fix}", "extra"))
    if len(problems) > found:
        return None
    return LayerLoad(name, "loaded", tuple(sources), tuple(arrays), "; ".join(notes))


def _epsilon_problem(name: str, kind: str, spec_epsilon: float, epsilon: float) -> str:
    return (
        f"layer '{name}' ({kind}) has epsilon {spec_epsilon:g}, the PyTorch source {epsilon:g} (a state_dict "
        f"does not record it; {TORCH_EPSILON:g} is PyTorch's default): set `epsilon: {epsilon:g}` on the layer "
        "(or `--set params.NAME=...` for the spec parameter that gives it), or give the source's epsilon "
        "to the weights option `epsilon` if it was trained with another"
    )


def _missing(name: str, key: str, torch_key: str) -> str:
    if key == "bias":
        return f"no '{torch_key}' (a PyTorch layer with bias=False): set `use_bias: false` on layer '{name}'"
    if key in ("moving_mean", "moving_variance"):
        return f"no '{torch_key}' (track_running_stats=False?): the spec's batch_norm needs the running statistics"
    return f"no '{torch_key}' tensor for the layer's {key}"


def _flatten_input(model: Any, nodes: dict[str, Node], name: str) -> tuple[int, ...] | None:
    """The shape a `flatten` took in, when `name` reads it (through dropout or activations)."""
    node = nodes.get(name)
    while node is not None and len(node.inputs) == 1:
        previous = nodes.get(node.inputs[0])
        if previous is None:
            return None
        if previous.kind == "flatten" and len(previous.inputs) == 1:
            shape = model.get_layer(previous.inputs[0]).output.shape
            return tuple(int(d) for d in shape[1:]) if all(d is not None for d in shape[1:]) else None
        if previous.kind not in PASS_THROUGH:
            return None
        node = previous
    return None


def _at(nodes: dict[str, Node], name: str, message: str, category: str) -> Noted:
    node = nodes.get(name)
    where = Problem(node.location, message, node.context) if node else Problem(Location(path=name), message)
    return category, where


def _merged(problems: list[Noted]) -> list[Problem]:
    """One problem per spec line and kind of mistake: a block used 16 times with the same
    wrong bias is one message (the first use's), with the count of the others."""
    groups: dict[tuple[Location, str], list[Problem]] = {}
    for category, problem in problems:
        groups.setdefault((problem.location, category), []).append(problem)
    merged = []
    for first, *others in groups.values():
        more = f" (and {len(others)} more layers from this line)" if others else ""
        merged.append(Problem(first.location, first.message + more, first.context))
    return merged


def _any_match(name: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def _names(names: Sequence[str], shown: int = 4) -> str:
    text = ", ".join(f"'{n}'" for n in names[:shown])
    return text + (f" and {len(names) - shown} more" if len(names) > shown else "") if names else "none"
