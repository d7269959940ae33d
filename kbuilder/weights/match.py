"""Source tensors -> the spec's layers: a `LoadPlan`, or every mismatch located at its layer.

`match(built, source, options)` chooses the matcher by the source's layout from MATCHERS:
Keras sources (here) match by layer name, through `map`, or by order; PyTorch sources are
matched by kbuilder.weights.torch_match, which registers itself under "torch".

Every mismatch is a problem of one SpecError (exit 2), located where the spec wrote the layer
(`file:line:column: layers[3]...`): a spec layer the source has nothing for (with the source
names nearest to it, and the fixes: `exclude` for a new head, a `map` entry), tensors of another
shape or count, a source layer that no spec layer takes, an include/exclude/map entry that names
nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from kbuilder.errors import Problem, SpecError, UsageError, did_you_mean
from kbuilder.spec.weights import WeightsSpec
from kbuilder.weights.globs import captures, fill, is_glob, matches_any
from kbuilder.weights.plan import LayerLoad, LoadPlan
from kbuilder.weights.targets import Target, weighted_targets
from kbuilder.weights.tensors import SourceTensors
from kbuilder.weights.torch_match import match_torch

# (built model: kbuilder.build.BuiltModel with .model, .graph, .loaded; source; options) -> plan
Matcher = Callable[[Any, SourceTensors, WeightsSpec], LoadPlan]
MATCHERS: dict[str, Matcher] = {}
AUTO_RULE = {"keras": "name", "torch": "order"}


def register_matcher(layout: str, matcher: Matcher) -> None:
    MATCHERS[layout] = matcher


def match(built: Any, source: SourceTensors, options: WeightsSpec) -> LoadPlan:
    matcher = MATCHERS.get(source.layout)
    if matcher is None:
        raise UsageError(
            f"{source.path}: {source.layout} sources are matched by kbuilder.weights.{source.layout}_match, "
            "which this build lacks"
        )
    return matcher(built, source, options)


class Problems:
    """The problems found while matching, each at the spec's layer or at the weights section."""

    def __init__(self, built: Any):
        self.loaded = built.loaded
        self.items: list[Problem] = []

    def at_layer(self, target: Target, message: str) -> None:
        self.items.append(Problem(target.node.location, message, target.node.context))

    def at(self, path: tuple, message: str) -> None:
        self.items.append(Problem(self.loaded.source.locate(("weights", *path)), message))

    def raise_any(self) -> None:
        if self.items:
            raise SpecError(self.items)


def _source_name(target: Target, options: WeightsSpec, used_entries: set[str]) -> tuple[str, str]:
    """The source layer a spec layer takes (and how it was found): the first `map` entry whose
    spec side matches it, else its own name."""
    for spec_glob, source_glob in options.map.items():
        found = captures(spec_glob, target.name)
        if found is not None:
            used_entries.add(spec_glob)
            return fill(source_glob, found), f"map {spec_glob}: {source_glob}"
    return target.name, "name"


def _arrays(
    target: Target, source: SourceTensors, layer: str, problems: Problems
) -> tuple[tuple[str, ...], tuple[np.ndarray, ...]] | None:
    """The source layer's tensors in the order of the spec layer's variables, or None (noted)."""
    keys = source.layers[layer]
    by_key = {key[len(layer) + 1 :]: key for key in keys if key.startswith(layer + "/")}
    wanted = [v.key for v in target.variables]
    if set(wanted) == set(by_key):  # Keras 3: each variable by its place, whatever the file's order
        chosen = [by_key[k] for k in wanted]
    elif len(keys) == len(wanted):  # legacy HDF5 lists weights in the layer's order
        chosen = list(keys)
    else:
        expected = ", ".join(f"{v.name} {v.shape}" for v in target.variables)
        got = ", ".join(str(tuple(source.tensors[k].shape)) for k in keys) or "none"
        problems.at_layer(
            target,
            f"layer '{target.name}' has {len(wanted)} weights ({expected}); the source layer '{layer}' "
            f"holds {len(keys)} ({got})",
        )
        return None
    arrays = []
    for variable, key in zip(target.variables, chosen):
        array = source.tensors[key]
        if tuple(array.shape) != variable.shape:
            problems.at_layer(
                target,
                f"layer '{target.name}' {variable.name}: expected shape {variable.shape}, the source's "
                f"{key} has {tuple(array.shape)} (a layer of another size: change the spec, or list "
                f"'{target.name}' in weights.exclude to keep it new)",
            )
            return None
        if variable.dtype.kind == "f" and array.dtype.kind != "f":
            problems.at_layer(
                target,
                f"layer '{target.name}' {variable.name}: the source's {key} is {array.dtype}, not a float",
            )
            return None
        arrays.append(array.astype(variable.dtype, copy=False))
    return tuple(chosen), tuple(arrays)


def _nearest(word: str, choices: list[str]) -> str | None:
    hint = did_you_mean(word, choices)
    return hint.split("'")[1] if hint else None


def _missing(target: Target, wanted: str, how: str, free: list[str], problems: Problems) -> None:
    near = _nearest(wanted, free) or _nearest(target.name, free)
    via = f" (from {how})" if how != "name" else ""
    problems.at_layer(
        target,
        f"the source has no layer '{wanted}'{via} for layer '{target.name}' {list(target.shapes)}"
        + (f" - did you mean '{near}'?" if near else "")
        + f" If it is new (a replaced head), add it to weights.exclude; else map it: "
        f"weights.map: {{{target.name}: {near or 'SOURCE_LAYER'}}}",
    )


def _pairs(targets: list[Target], source: SourceTensors, options: WeightsSpec, rule: str, problems: Problems):
    """(target, source layer or None, how) for each target to load."""
    if rule != "order":
        entries: set[str] = set()
        pairs = [(t, *_source_name(t, options, entries)) for t in targets]
        for spec_glob in options.map:
            if spec_glob not in entries:
                names = [t.name for t in targets]
                problems.at(
                    ("map", spec_glob), f"matches no spec layer to load{did_you_mean(spec_glob, names)}"
                )
        return pairs
    if not source.ordered:
        raise UsageError(
            f"{source.path}: a Keras 3 weights file keys its layers by class, not in the model's order; "
            "match by name (weights.match: name) or with a map, or give the run's .keras file"
        )
    weighted = [name for name, keys in source.layers.items() if keys]
    if len(weighted) != len(targets):
        problems.at(
            ("match",),
            f"order matching pairs {len(targets)} spec layers to load with the source's "
            f"{len(weighted)} weighted layers; exclude the layers that differ",
        )
        return []
    return [(t, name, "order") for t, name in zip(targets, weighted)]


def match_keras(built: Any, source: SourceTensors, options: WeightsSpec) -> LoadPlan:
    """Keras sources: by layer name (auto), by `map` then name, or by order."""
    rule = AUTO_RULE["keras"] if options.match == "auto" else options.match
    rule = "map" if options.map and rule == "name" else rule
    problems = Problems(built)
    targets = weighted_targets(built.model, built.graph)
    source_names = set(source.layers)
    _check_globs(targets, source_names, options, problems)
    loading, rows = [], {}
    for target in targets:
        if matches_any(target.names, options.exclude):
            rows[target.name] = LayerLoad(target.name, "new", note="excluded", shapes=target.shapes)
        elif options.include is not None and not matches_any(target.names, options.include):
            rows[target.name] = LayerLoad(target.name, "skipped", note="not included", shapes=target.shapes)
        else:
            loading.append(target)
    taken: set[str] = set()
    pairs = _pairs(loading, source, options, rule, problems)
    free = sorted(source_names - {name for _, name, _ in pairs})
    for target, name, how in pairs:
        if name not in source.layers or not source.layers[name]:
            _missing(target, name, how, free, problems)
            continue
        taken.add(name)
        found = _arrays(target, source, name, problems)
        if found is not None:
            keys, arrays = found
            rows[target.name] = LayerLoad(
                target.name, "loaded", keys, arrays, note=how, source_layer=name, shapes=target.shapes
            )
    _unused(targets, source, options, taken, problems)
    problems.raise_any()
    return LoadPlan(source.path, source.layout, rule, [rows[t.name] for t in targets])


def _unused(
    targets: list[Target], source: SourceTensors, options: WeightsSpec, taken: set[str], problems: Problems
) -> None:
    """Source layers with weights that no spec layer takes are a mismatch, unless the spec
    chose its layers (`include`) or names them as left out (`exclude`, or a spec layer of that
    name left new)."""
    if options.include is not None:
        return
    left_new = {t.name for t in targets} - taken
    unused = [
        name
        for name, keys in source.layers.items()
        if keys and name not in taken and name not in left_new and not matches_any([name], options.exclude)
    ]
    spare = sorted(left_new)
    for name in unused[:20]:
        shapes = [tuple(source.tensors[k].shape) for k in source.layers[name]]
        near = _nearest(name, spare)
        problems.at(
            ("from",),
            f"the source's layer '{name}' {shapes} is taken by no spec layer"
            + (f" - did you mean '{near}'?" if near else "")
            + f" Map it (weights.map: {{{near or 'SPEC_LAYER'}: {name}}}) or leave it out "
            f"(weights.exclude: [{name}])",
        )
    if len(unused) > 20:
        problems.at(("from",), f"... and {len(unused) - 20} more source layers taken by no spec layer")


def _check_globs(
    targets: list[Target], source_names: set[str], options: WeightsSpec, problems: Problems
) -> None:
    """An include or exclude entry that names no layer on either side is a typo."""
    spec_names = {name for t in targets for name in t.names}
    for field in ("include", "exclude"):
        for index, pattern in enumerate(getattr(options, field) or []):
            if not matches_any([*spec_names, *source_names], [pattern]):
                hint = "" if is_glob(pattern) else did_you_mean(pattern, spec_names | source_names)
                problems.at(
                    (field, index), f"'{pattern}' names no weighted layer of the spec or the source{hint}"
                )


MATCHERS["keras"] = match_keras


def _match_torch(built: Any, source: SourceTensors, options: WeightsSpec) -> LoadPlan:
    """PyTorch state_dicts: by module order (auto), or a map first (kbuilder.weights.torch_match)."""
    if options.match == "name":
        raise UsageError(
            f"{source.path}: a state_dict's module names ('features.0') are not the spec's layer names; "
            "match by order (weights.match: auto) or pair them with weights.map"
        )
    return match_torch(
        built.model,
        source,
        graph=built.graph,
        include=options.include or (),
        exclude=options.exclude,
        mapping=options.map,
        epsilon=options.epsilon,
    )


MATCHERS["torch"] = _match_torch
