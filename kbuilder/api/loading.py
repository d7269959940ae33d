"""Spec sources for every API function: a path, a bundled name, YAML text, a dict or a LoadedSpec.

Loading and validating import no Keras, so a bad spec is refused in a fraction of a second;
every other API function calls these first.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from kbuilder.errors import UsageError
from kbuilder.graph import Graph, expand
from kbuilder.graph.search_values import check_search_values
from kbuilder.graph.shapes import static_shapes
from kbuilder.spec import LoadedSpec, load_spec, loads_spec
from kbuilder.train.freeze import plan_phases
from kbuilder.zoo import spec_path

# A spec: a file path, a bundled spec's name, YAML text, a dict, or an already loaded spec.
SpecSource = str | Path | Mapping[str, Any] | LoadedSpec
# Text that starts like a YAML mapping (`name: m`, `{name: m}`) is a spec, not a file name.
_MAPPING_START = re.compile(r"^\s*(\{|[A-Za-z_][\w-]*\s*:(\s|$))")


def is_yaml_text(text: str) -> bool:
    """Whether a string is a spec's YAML text rather than a file name or bundled name."""
    return "\n" in text or bool(_MAPPING_START.match(text))


def _yaml_of(data: Mapping[str, Any]) -> str:
    """A dict as YAML text (tuples become lists); its problems are then located like a file's,
    the line numbers counting in `yaml.safe_dump(spec, sort_keys=False)`."""
    try:
        plain = json.loads(json.dumps(data))
    except (TypeError, ValueError) as exc:
        raise UsageError(
            f"a spec dict holds plain data only (dict, list, str, number, bool, None): {exc}"
        ) from None
    return yaml.safe_dump(plain, sort_keys=False)


def load(spec: SpecSource, overrides: Sequence[str] = ()) -> LoadedSpec:
    """Read and validate a spec (no Keras); `overrides` are `--set`-style `KEY=VALUE` strings.

    Example: `kb.load("specs/lenet5.yaml", ["train.epochs=3"]).spec.name`"""
    if isinstance(spec, LoadedSpec):
        if overrides:
            raise UsageError(
                "overrides apply while a spec loads: pass its file, text or dict, not a LoadedSpec"
            )
        return spec
    if isinstance(spec, Mapping):
        return loads_spec(_yaml_of(spec), file="<dict>", overrides=overrides)
    if isinstance(spec, str) and is_yaml_text(spec):
        return loads_spec(spec, file="<string>", overrides=overrides)
    path = spec if isinstance(spec, Path) else spec_path(spec)  # a bare name may be a bundled spec
    return load_spec(path, overrides=overrides)


def validate(spec: SpecSource, overrides: Sequence[str] = (), *, shapes: bool = True) -> Graph:
    """Validate and expand a spec; returns its layer graph (still no Keras). With `shapes`,
    every layer's output shape is computed statically and shape mistakes raise BuildError.

    Example: `len(kb.validate("resnet50").nodes)`"""
    loaded = load(spec, overrides)
    graph = expand(loaded)
    check_search_values(loaded)  # a fixed or searched value that every trial would refuse
    if loaded.spec.train is not None:
        plan_phases(loaded, graph)  # train.freeze and train.phases name existing layers
    if shapes:
        static_shapes(graph)
    return graph


def validated(spec: SpecSource, overrides: Sequence[str] = (), *, shapes: bool = True) -> LoadedSpec:
    """The loaded spec once it has expanded (and, with `shapes`, passed the static shape check):
    what every function that imports Keras calls first."""
    loaded = load(spec, overrides)
    validate(loaded, shapes=shapes)
    return loaded
