"""The layer entry: `- kind: {arguments}`, one discriminated union over the registry."""

from functools import lru_cache
from typing import Annotated, Any, Union

from pydantic import BeforeValidator, Discriminator, Field, Tag, create_model

from kbuilder.spec.base import StrictModel
from kbuilder.spec.diagnostics import describe
from kbuilder.spec.registry import LayerSpec, all_kinds
from kbuilder.spec.suggest import unknown_kind_message

# The tag of an entry that is not a one-key mapping (usually: arguments indented at the
# wrong level, so YAML read them as sibling keys of the kind).
NOT_ONE_KEY = "<not one key>"


def entry_kind(value: Any) -> str:
    if isinstance(value, dict) and len(value) == 1:
        return str(next(iter(value)))
    return NOT_ONE_KEY


def _bare_kind(value: Any) -> Any:
    """`- flatten` means `- flatten: {}`."""
    return {value: None} if isinstance(value, str) else value


def _entry_model(kind: str, spec: type[LayerSpec]) -> type[StrictModel]:
    doc = (spec.__doc__ or kind).strip().splitlines()[0]
    fields: dict[str, Any] = {kind: (spec, Field(description=doc))}
    return create_model(f"{spec.__name__}Entry", __base__=StrictModel, __doc__=doc, **fields)


@lru_cache(maxsize=1)
def layer_entry_type() -> Any:
    """`Annotated[Union[...], Discriminator]` over every registered kind (for the schema)."""
    members = tuple(
        Annotated[_entry_model(kind, spec), Tag(kind)] for kind, spec in sorted(all_kinds().items())
    )
    # A Union built from a tuple at run time: the `X | Y` form cannot express that.
    union = Annotated[Union[members], Discriminator(entry_kind)]  # type: ignore[valid-type]  # noqa: UP007
    return Annotated[union, BeforeValidator(_bare_kind)]


class EntryError(ValueError):
    """A layer entry that is not `- kind: {arguments}` with a registered kind."""


def validate_entry(raw: Any) -> LayerSpec:
    """Validate one raw layer entry: dispatch on its one key (the tag of the layer-entry
    union) to that kind's model. Building only the models a spec uses keeps validation
    fast; the whole union is built for the JSON schema. Raises EntryError or
    pydantic.ValidationError (whose locations are relative to the arguments)."""
    raw = _bare_kind(raw)
    kind = entry_kind(raw)
    if kind == NOT_ONE_KEY:
        raise EntryError(_entry_shape_message(raw))
    spec = all_kinds().get(kind)
    if spec is None:
        raise EntryError(unknown_kind_message(kind, all_kinds()))
    return spec.model_validate(raw[kind])


def _entry_shape_message(value: Any) -> str:
    if isinstance(value, dict) and len(value) > 1:
        keys = ", ".join(f"'{k}'" for k in value)
        return (
            f"a layer entry has exactly one key, the layer kind, but this one has {keys}; "
            "indent the arguments under the kind (e.g. `- conv2d:` then `    filters: 6` on the next line)"
        )
    return f"expected a layer entry like `- dense: {{units: 10}}`, got {describe(value)}"
