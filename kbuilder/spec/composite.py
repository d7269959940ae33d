"""Composition kinds: branches, residual, repeat, block instances and inception.

Their nested layer lists stay raw here: the expander substitutes `${...}` parameters
first and then validates each nested entry with the same layer-entry model as the top
level (one validation path). The JSON schema still describes them as layer entries.
"""

from typing import Annotated, Any, Literal

from pydantic import Field, WithJsonSchema

from kbuilder.spec.base import Name
from kbuilder.spec.fields import ActivationName, Axis, Width
from kbuilder.spec.kind import LayerSpec, layer_kind
from kbuilder.spec.layers.normalization import BatchNorm

# Replaced by a $ref to the LayerEntry definition in kbuilder.spec.schema.
LAYER_ENTRY_MARK = {"x-kbuilder": "layer-entry"}

RawLayers = Annotated[
    list[Any],
    WithJsonSchema({"type": "array", "items": LAYER_ENTRY_MARK}),
    Field(description="A list of layer entries, each `- kind: {arguments}`."),
]
ParamValue = int | float | str | bool | None | list[Any]


@layer_kind("branches", category="composite")
class Branches(LayerSpec):
    """Parallel paths from the same input, merged at the end. An empty path is the identity."""

    composite = True
    paths: dict[Name, RawLayers] = Field(
        min_length=2,
        description="Named paths in order (two or more); each is a list of layers applied to the input.",
    )
    merge: Literal["concat", "add", "multiply", "average", "maximum"] = Field(
        "concat", description="How the path outputs are merged."
    )
    axis: Axis = -1


@layer_kind("residual", category="composite")
class Residual(LayerSpec):
    """`merge(body(x), shortcut(x))`, then an optional activation (He et al. 2016)."""

    composite = True
    layers: RawLayers = Field(min_length=1, description="The body applied to the input.")
    shortcut: Annotated[
        Literal["identity", "projection"] | RawLayers,
        Field(
            description=(
                "'identity'; 'projection' (1x1 conv with the body's channels and stride, then batch_norm); "
                "or a list of layers."
            )
        ),
    ] = "identity"
    projection_batch_norm: bool | BatchNorm = Field(
        True, description="Follow the projection conv with batch_norm: true, false, or batch_norm arguments."
    )
    projection_use_bias: bool = Field(True, description="Whether the projection conv has a bias.")
    activation: ActivationName | None = Field(None, description="Activation after the merge (ResNet: relu).")


@layer_kind("repeat", category="composite")
class Repeat(LayerSpec):
    """The same layers `times` times in sequence; `${index}` holds the repetition (from 0) and
    `${prev(k)}` names the output of the repetition k before (prev(1): the previous one)."""

    composite = True
    times: int = Field(ge=0, le=10_000, description="How many times to repeat the layers (0: the identity).")
    layers: RawLayers = Field(min_length=1, description="The layers of one repetition.")
    index: Name = Field("index", description="Parameter name of the 0-based repetition number.")
    prefix: bool = Field(
        True,
        description="Prefix the layers' names with `NAME-INDEX-` (false: the names as written, "
        "which must then differ by `${index}`).",
    )


@layer_kind("block", shorthand="use", category="composite")
class BlockUse(LayerSpec):
    """An instance of a block defined under `blocks:`, with its arguments."""

    composite = True
    use: Name = Field(description="The name of a block under `blocks:`.")
    args: dict[Name, ParamValue] = Field(
        default_factory=dict, description="Values of the block's parameters."
    )
    prefix: bool = Field(
        True,
        description="Prefix the block's layer names with `NAME-` (false: the names as written, "
        "which must then differ by the block's arguments).",
    )


@layer_kind("inception", category="composite")
class Inception(LayerSpec):
    """GoogLeNet's inception module (Szegedy et al. 2014, Table 1): four paths concatenated:
    1x1 | 1x1 reduce -> 3x3 | 1x1 reduce -> 5x5 | 3x3 max pool -> 1x1 projection."""

    composite = True
    conv1x1: Width = Field(description="#1x1: filters of the 1x1 path.")
    conv3x3_reduce: Width = Field(description="#3x3 reduce: 1x1 filters before the 3x3.")
    conv3x3: Width = Field(description="#3x3: filters of the 3x3 conv.")
    conv5x5_reduce: Width = Field(description="#5x5 reduce: 1x1 filters before the 5x5.")
    conv5x5: Width = Field(description="#5x5: filters of the 5x5 conv.")
    pool_proj: Width = Field(description="pool proj: 1x1 filters after the 3x3 max pool.")
    activation: ActivationName = Field("relu", description="Activation of every convolution.")

    def as_branches(self) -> dict[str, Any]:
        """The equivalent `branches` entry."""

        def conv(filters: int, size: int) -> dict:
            return {
                "conv2d": {
                    "filters": filters,
                    "kernel_size": size,
                    "padding": "same",
                    "activation": self.activation,
                }
            }

        return {
            "merge": "concat",
            "paths": {
                "1x1": [conv(self.conv1x1, 1)],
                "3x3": [conv(self.conv3x3_reduce, 1), conv(self.conv3x3, 3)],
                "5x5": [conv(self.conv5x5_reduce, 1), conv(self.conv5x5, 5)],
                "pool": [
                    {"max_pooling2d": {"pool_size": 3, "strides": 1, "padding": "same"}},
                    conv(self.pool_proj, 1),
                ],
            },
        }
