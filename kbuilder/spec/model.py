"""The top-level spec: name, inputs, blocks, layers, outputs, expect, train and weights."""

from typing import Any, Literal

from pydantic import Field, model_validator

from kbuilder.spec.base import Identifier, Name, StrictModel
from kbuilder.spec.composite import ParamValue, RawLayers
from kbuilder.spec.fields import Shape
from kbuilder.spec.search import SearchSpec
from kbuilder.spec.train import TrainSpec
from kbuilder.spec.weights import WeightsSpec


class InputSpec(StrictModel):
    """One model input."""

    shape: Shape
    dtype: Literal["float32", "float16", "bfloat16", "int32", "int64", "uint8", "bool"] = Field(
        "float32", description="Element type of the input."
    )


class BlockDef(StrictModel):
    """A reusable, parameterized group of layers, used as `- block: {use: NAME, args: {...}}`."""

    description: str = Field("", max_length=2000, description="What the block is.")
    params: dict[Name, ParamValue] = Field(
        default_factory=dict,
        description="Parameter names with their default values; null means the argument is required.",
    )
    layers: RawLayers = Field(min_length=1)


class LayerExpect(StrictModel):
    """What one named layer must produce."""

    output_shape: Shape | None = Field(None, description="Output shape without the batch dimension.")
    params: int | None = Field(None, ge=0, description="Parameter count of the layer.")


class ExpectSpec(StrictModel):
    """Figures the built model must match; `kbuilder check` fails (exit 1) otherwise."""

    params: int | None = Field(None, ge=0, description="Total parameter count.")
    trainable_params: int | None = Field(None, ge=0, description="Trainable parameter count.")
    non_trainable_params: int | None = Field(None, ge=0, description="Non-trainable parameter count.")
    macs: int | None = Field(None, ge=0, description="Multiply-accumulates for one sample.")
    output_shape: Shape | list[Shape] | None = Field(
        None, description="Output shape without batch (a list of shapes for several outputs)."
    )
    layers: dict[Name, LayerExpect] = Field(
        default_factory=dict, description="Per-layer expectations by name."
    )


class ModelSpec(StrictModel):
    """A model: named inputs, an ordered list of layers, and what to expect of it."""

    name: Name = Field(description="Model name (used for run directories and exports).")
    description: str = Field(
        "", max_length=5000, description="One line on what the model is and where it comes from."
    )
    inputs: dict[Identifier, InputSpec] = Field(
        min_length=1, max_length=64, description="Named model inputs in order, each with its shape."
    )
    params: dict[Name, ParamValue] = Field(
        default_factory=dict, description="Values usable as `${name}` anywhere in the layers (e.g. a width)."
    )
    blocks: dict[Name, BlockDef] = Field(default_factory=dict, description="Reusable blocks, by name.")
    layers: RawLayers = Field(min_length=1)
    outputs: list[Name] | None = Field(
        None,
        min_length=1,
        description="Layers whose outputs are the model's outputs; default: the last layer.",
    )
    expect: ExpectSpec | None = Field(None, description="Figures `kbuilder check` verifies.")
    train: TrainSpec | None = Field(None, description="How `kbuilder train` trains the model.")
    search: SearchSpec | None = Field(
        None, description="What `kbuilder tune` searches (ignored by `kbuilder train`)."
    )
    weights: WeightsSpec | None = Field(
        None, description="Trained weights the model starts from (docs/weights.md)."
    )

    @model_validator(mode="before")
    @classmethod
    def _outputs_as_list(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("outputs"), str):
            data = {**data, "outputs": [data["outputs"]]}
        return data
