"""The layer entry: `- kind: {arguments}`, one discriminated union over the registry."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Any, Union

from pydantic import BeforeValidator, Discriminator, Field, Tag, TypeAdapter, create_model

from kbuilder.spec.base import StrictModel
from kbuilder.spec.registry import LayerSpec, all_kinds

# Returned by the discriminator when an entry is not a one-key mapping, so the error
# mapper can explain the usual cause (arguments indented at the wrong level).
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
    return create_model(
        f"{spec.__name__}Entry",
        __base__=StrictModel,
        __doc__=doc,
        **{kind: (spec, Field(description=doc))},
    )


@lru_cache(maxsize=1)
def layer_entry_type() -> Any:
    """`Annotated[Union[...], Discriminator]` over every registered kind."""
    members = tuple(Annotated[_entry_model(kind, spec), Tag(kind)] for kind, spec in sorted(all_kinds().items()))
    union = Annotated[Union[members], Discriminator(entry_kind)]  # type: ignore[valid-type]
    return Annotated[union, BeforeValidator(_bare_kind)]


@lru_cache(maxsize=1)
def layer_entry_adapter() -> TypeAdapter:
    return TypeAdapter(layer_entry_type())


def validate_entry(raw: Any) -> LayerSpec:
    """Validate one raw layer entry and return its spec (raises pydantic.ValidationError)."""
    wrapper = layer_entry_adapter().validate_python(raw)
    (kind,) = type(wrapper).model_fields
    return getattr(wrapper, kind)
