"""The base of every layer kind: `LayerSpec` (the fields every entry accepts, and the four
static figures every kind answers from its input shapes) and `@layer_kind`, which
registers a kind's spec model once. `kbuilder.spec.registry` imports every family and
lists them; the families import this module only.

A kind's figures live on its class, beside its fields: `output_shape` (None: unknown,
Keras decides), `params` (with the trainable split), `macs` per sample and `field_step`
(how it moves a receptive field). The defaults describe a kind without weights whose
output shape the spec does not tell; `keeps_shape = True` says the output has the input's.
"""

from typing import Any, ClassVar

from pydantic import Field, model_validator

from kbuilder.spec.base import Name, StrictModel
from kbuilder.spec.fields import Constraint, Initializer, OptionalActivation, Regularizer, UseBias
from kbuilder.spec.figures import FieldStep, Params, TensorShape, bias, channels, window_product

LAYER_KINDS: dict[str, type["LayerSpec"]] = {}


class LayerSpec(StrictModel):
    """Fields every layer entry accepts besides its own Keras arguments."""

    kind: ClassVar[str] = ""
    # The field a scalar value fills: `- dense: 128` means `- dense: {units: 128}`.
    shorthand: ClassVar[str | None] = None
    # Keras layer class built from the remaining fields, for kinds that map one-to-one.
    keras_class: ClassVar[str | None] = None
    category: ClassVar[str] = "core"
    composite: ClassVar[bool] = False
    # Fields that are not Keras constructor arguments.
    meta_fields: ClassVar[frozenset[str]] = frozenset({"name", "inputs", "trainable", "when"})
    # The output has the first input's shape (activations, dropout, normalization).
    keeps_shape: ClassVar[bool] = False
    # The rank (batch axis included) of the only input Keras's layer takes: 3 for a 1D layer
    # (steps, channels), 4 for a 2D one (height, width, channels); None: any rank.
    input_rank: ClassVar[int | None] = None

    name: Name | None = Field(None, description="Layer name; derived from the spec path when omitted.")
    inputs: list[Name] | None = Field(
        None,
        min_length=1,
        description="Names of the layers (or model inputs) this layer takes; default: the previous layer.",
    )
    trainable: bool = Field(
        True, description="false freezes the weights (of every layer inside, for a composite)."
    )
    when: bool = Field(
        True,
        description=(
            "false leaves the entry out, as if it were not written: the next entry takes its input. "
            'Usually an expression, e.g. `when: "${expansion > 1}"`.'
        ),
    )

    @model_validator(mode="before")
    @classmethod
    def _expand_shorthand(cls, data: Any) -> Any:
        if data is None:
            return {}
        if isinstance(data, dict):
            if isinstance(data.get("inputs"), str):  # `inputs: x` means `inputs: [x]`
                data = {**data, "inputs": [data["inputs"]]}
            return data
        if cls.shorthand is not None:
            return {cls.shorthand: data}
        return data

    def out_channels(self, inputs: list[int | None]) -> int | None:
        """The output's channel count (last axis) from the inputs' channel counts, when the
        spec alone tells it; None when it does not. Lets `${in_channels}` appear in a
        composite's arguments (a block's expansion width) before anything is built.
        A field naming the output width decides; otherwise the channels pass through."""
        for field in ("filters", "units", "output_dim", "num_units"):
            value = getattr(self, field, None)
            if isinstance(value, int) and not isinstance(value, bool):
                return value
        first = inputs[0] if inputs else None
        multiplier = getattr(self, "depth_multiplier", None)
        return first * multiplier if first is not None and isinstance(multiplier, int) else first

    def output_shape(self, inputs: list[TensorShape]) -> TensorShape | None:
        """The output shape from the input shapes; None when the spec cannot tell."""
        return inputs[0] if self.keeps_shape else None

    def params(self, inputs: list[TensorShape]) -> Params:
        """The weights Keras creates for these inputs, trainable and not."""
        return Params()

    def macs(self, inputs: list[TensorShape], output: TensorShape) -> int:
        """Multiply-accumulates for one sample (bias adds, activations, pooling and merges: 0)."""
        return 0

    def weight_bytes(self, params: Params) -> int:
        """The memory of these weights: Keras creates them in float32 (its default floatx; a
        mixed-precision policy keeps float32 variables too), 4 bytes each."""
        return 4 * params.total

    def field_step(self, inputs: list[TensorShape]) -> FieldStep | None:
        """How the layer moves a receptive field; None: it passes through unchanged."""
        return None

    def input_problem(self, name: str, inputs: list[TensorShape]) -> str | None:
        """What is wrong with these input shapes for this kind, in the spec's words (the
        static walk and the builder ask before Keras sees the layer); None: nothing the
        spec can tell. Windows, cropping and merges are checked in kbuilder.graph.checks."""
        return None

    def keras_kwargs(self) -> dict[str, Any]:
        """The Keras constructor arguments the user set (defaults left to Keras)."""
        return {
            key: getattr(self, key)
            for key in type(self).model_fields
            if key not in self.meta_fields and getattr(self, key) is not None
        }


class WeightedLayerSpec(LayerSpec):
    """The weight arguments Keras's Dense and Conv layers share."""

    activation: OptionalActivation = None
    use_bias: UseBias = True
    kernel_initializer: Initializer | None = None
    bias_initializer: Initializer | None = None
    kernel_regularizer: Regularizer | None = None
    bias_regularizer: Regularizer | None = None
    kernel_constraint: Constraint | None = None
    bias_constraint: Constraint | None = None

    def kernel_params(self, inputs: list[TensorShape], groups: int = 1) -> Params:
        """A kernel of `window x in_channels / groups x outputs` weights plus a bias of `outputs`."""
        filters = getattr(self, "filters", None)  # convolutions name their outputs filters, dense units
        outputs = int(filters if filters is not None else getattr(self, "units", 1))
        window = window_product(getattr(self, "kernel_size", 1), inputs[0])
        return Params(window * (channels(inputs[0]) // groups) * outputs + bias(self, outputs))


def layer_kind(
    kind: str, *, shorthand: str | None = None, keras_class: str | None = None, category: str = "core"
):
    """Class decorator registering a layer spec model under `kind`."""

    def register(cls: type[LayerSpec]) -> type[LayerSpec]:
        if kind in LAYER_KINDS:
            raise ValueError(f"layer kind {kind!r} is registered twice")
        cls.kind = kind
        cls.shorthand = shorthand
        cls.keras_class = keras_class
        cls.category = category
        LAYER_KINDS[kind] = cls
        return cls

    return register
