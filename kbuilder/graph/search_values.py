"""The values a `search` section would set, checked before any trial runs.

Layer arguments are validated when the spec expands (blocks and `${...}` parameters are
resolved there), so a `fixed` value, a `choice` or a range's end that no layer accepts passes
the schema and fails every trial. `check_search_values` expands the spec with each of those
values set (kbuilder/spec/search_check.py picks them and locates what it finds in the file):
`kbuilder validate` and `kbuilder tune` refuse such a section up front.
"""

from __future__ import annotations

from kbuilder.errors import SpecError
from kbuilder.graph.expand import expand
from kbuilder.spec import LoadedSpec, validate_data
from kbuilder.spec.loader import SourceMap
from kbuilder.spec.search_check import value_problems


def check_search_values(loaded: LoadedSpec) -> None:
    """Raise one SpecError naming each searched or fixed value the spec refuses."""
    search = loaded.spec.search
    if search is None:
        return
    found = value_problems(search, loaded.data, loaded.source, _expands)
    if found:
        raise SpecError(found)


def _expands(data: dict, source: SourceMap, model_changed: bool) -> None:
    spec = validate_data(data, source)
    if model_changed:  # a `train` value alone cannot change what the layers expand to
        expand(LoadedSpec(spec, data, source))


__all__ = ["check_search_values"]
