"""A Keras model (a `.keras` file or a keras.applications name) -> a kbuilder spec's text."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from kbuilder.errors import Location, Problem, SpecError
from kbuilder.importer.applications import application_config, build_application
from kbuilder.importer.archive import read_keras_archive
from kbuilder.importer.fold_check import folded_spec
from kbuilder.importer.folding import Fold, Run, find_runs
from kbuilder.importer.keras_graph import KerasGraph, KerasLayer, read_keras_config
from kbuilder.importer.kinds import Unmapped, map_layer
from kbuilder.importer.spec_writer import IDENTIFIER_PATTERN, NAME_PATTERN, SpecLayer, spec_text
from kbuilder.spec.registry import LAYER_KINDS


@dataclass
class Imported:
    """The spec text and what the import found."""

    source: str
    text: str
    graph: KerasGraph
    layers: list[SpecLayer]
    runs: list[Run] = field(default_factory=list)
    folds: list[Fold] = field(default_factory=list)  # the runs written folded
    flat_lines: int = 0  # the spec's lines written flat, one line per layer
    model: Any = None  # the Keras model, for a keras.applications name (built here anyway)

    @property
    def spec_lines(self) -> int:
        return len(self.text.splitlines())


def _refusal(source: str, unmapped: list[Unmapped]) -> SpecError:
    problems = []
    by_class: dict[str, list[Unmapped]] = {}
    for item in unmapped:
        by_class.setdefault(item.reason, []).append(item)
    needed = sorted({u.needed_kind for u in unmapped if u.needed_kind})
    for reason, items in by_class.items():
        first = items[0].layer
        more = (
            f" (and {len(items) - 1} more: {', '.join(i.layer.name for i in items[1:4])}{', ...' if len(items) > 4 else ''})"
            if len(items) > 1
            else ""
        )
        problems.append(
            Problem(
                Location(source, path=first.where),
                f"layer '{first.name}' ({first.class_name}): {reason}{more}",
            )
        )
    if needed:
        problems.append(
            Problem(
                Location(source),
                f"kbuilder would need the layer kind(s) {', '.join(needed)}; nothing was written "
                "(`kbuilder schema` lists the kinds there are)",
            )
        )
    return SpecError(problems)


def _checked(layer: KerasLayer, kind: str, args: dict[str, Any]) -> tuple[str, dict[str, Any]] | Unmapped:
    """The arguments validated by the kind's spec, so a bad value is reported at the source's layer."""
    try:
        LAYER_KINDS[kind].model_validate(args)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        return Unmapped(layer, f"{field}: {first['msg'].lower()}; got {first.get('input')!r:.80}")
    return kind, args


def convert_graph(graph: KerasGraph, source: str, description: str) -> Imported:
    """Map every layer, refusing the model (every problem at once) when one has no kind."""
    unmapped: list[Unmapped] = []
    layers: list[SpecLayer] = []
    bad_names = [
        Problem(
            Location(source, path=layer.where),
            f"layer name '{layer.name}' is not a valid kbuilder name (letters, digits, '_', '-')",
        )
        for layer in graph.layers
        if not NAME_PATTERN.match(layer.name)
    ] + [
        Problem(
            Location(source, path="config.input_layers"),
            f"input name '{name}' is not a valid kbuilder input name (letters, digits, '_')",
        )
        for name in graph.inputs
        if not IDENTIFIER_PATTERN.match(name)
    ]
    if bad_names:
        raise SpecError(bad_names)
    for layer in graph.layers:
        mapped = map_layer(layer)
        if not isinstance(mapped, Unmapped):
            mapped = _checked(layer, *mapped)
        if isinstance(mapped, Unmapped):
            unmapped.append(mapped)
        else:
            layers.append(SpecLayer(mapped[0], layer.name, layer.inputs, mapped[1]))
    if unmapped:
        raise _refusal(source, unmapped)
    runs = find_runs(layers)
    text, folds = folded_spec(graph, layers, runs, description)
    flat_lines = len(spec_text(graph, layers, description).splitlines())
    return Imported(source, text, graph, layers, runs, folds, flat_lines)


def read_keras_file(path: Path) -> KerasGraph:
    """A `.keras` file's layers, from its config.json alone (no Keras needed)."""
    return read_keras_config(read_keras_archive(path), str(path))


def import_keras_file(path: Path, graph: KerasGraph | None = None) -> Imported:
    """A `.keras` file's model as a spec (`graph`: the file, already read)."""
    graph = graph if graph is not None else read_keras_file(path)
    return convert_graph(graph, str(path), f"imported by `kbuilder import` from {path.name}")


def import_application(name: str, input_shape: tuple[int, ...] | None = None) -> Imported:
    """A keras.applications model (random weights, built offline) as a spec."""
    model = build_application(name, input_shape)
    graph = read_keras_config(application_config(model), name)
    shape = f" at input {list(input_shape)}" if input_shape else ""
    imported = convert_graph(graph, name, f"keras.applications.{name}{shape}, imported by `kbuilder import`")
    imported.model = model
    return imported
