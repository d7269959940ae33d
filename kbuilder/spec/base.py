"""Pydantic base classes for every spec section (no TensorFlow or Keras here)."""

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field


class StrictModel(BaseModel):
    """A spec section: unknown keys are errors, values are not coerced from strings."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=False,
        validate_default=True,
        populate_by_name=True,
        use_attribute_docstrings=False,
        defer_build=True,
        allow_inf_nan=False,  # `.inf`/`.nan` are never a sane rate, scale or coefficient
    )

    def explicit(self) -> dict[str, Any]:
        """The fields the user set (or that differ from their defaults), for round trips."""
        return self.model_dump(mode="json", exclude_unset=True)


PositiveInt = Annotated[int, Field(gt=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]
Rate = Annotated[float, Field(ge=0.0, lt=1.0)]
Name = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9_][A-Za-z0-9_-]*$",
        max_length=120,
        description="A name: letters, digits, '_' and '-' (Keras reserves '/', PyTorch '.').",
    ),
]
Identifier = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        max_length=120,
        description="An identifier: letters, digits and '_' (model inputs become SavedModel argument names).",
    ),
]
