"""The spec package: load, validate and describe YAML specs. Imports no TensorFlow/Keras."""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from kbuilder.spec.diagnostics import describe, located, spec_error_from_validation
from kbuilder.spec.loader import SourceMap, parse_yaml, read_yaml
from kbuilder.spec.model import ModelSpec
from kbuilder.spec.overrides import apply_overrides
from kbuilder.spec.search_check import check_search


@dataclass
class LoadedSpec:
    """A validated spec with the raw data it came from and where each value was written."""

    spec: ModelSpec
    data: dict[str, Any]
    source: SourceMap
    path: Path | None = None

    @property
    def file(self) -> str:
        return self.source.file


def validate_data(data: Any, source: SourceMap) -> ModelSpec:
    try:
        return ModelSpec.model_validate(data)
    except ValidationError as exc:
        raise spec_error_from_validation(exc, data, source, root=ModelSpec) from None


def load_spec(path: str | Path, *, overrides: Sequence[str] = ()) -> LoadedSpec:
    """Read, override and validate a spec file."""
    data, source = read_yaml(path)
    return _finish(data, source, overrides, Path(path))


def loads_spec(text: str, *, file: str = "<string>", overrides: Sequence[str] = ()) -> LoadedSpec:
    """Validate a spec given as YAML text (notebooks, tests)."""
    data, source = parse_yaml(text, file)
    return _finish(data, source, overrides, None)


def _finish(data: Any, source: SourceMap, overrides: Sequence[str], path: Path | None) -> LoadedSpec:
    if not isinstance(data, dict):
        raise located(
            source, (), f"expected a mapping with 'name', 'inputs' and 'layers', got {describe(data)}"
        )
    apply_overrides(data, overrides, source)
    spec = validate_data(data, source)
    if spec.weights is not None:  # a relative `from` names a file beside the spec, wherever it runs
        spec.weights = spec.weights.resolved(path.parent if path else None)
    if spec.search is not None:
        check_search(spec.search, data, source, spec.model_dump(mode="json", exclude={"search"}))
    return LoadedSpec(spec, data, source, path)


__all__ = ["LoadedSpec", "ModelSpec", "load_spec", "loads_spec", "validate_data"]
