"""Dense, activation, dropout, shape and embedding layer kinds, with their static figures."""

import math
from typing import Annotated, Literal

from pydantic import Field

from kbuilder.spec.fields import (
    MAX_DIMENSION,
    ActivationName,
    Axis,
    DropoutRate,
    Initializer,
    Regularizer,
    Seed,
    Shape,
    Units,
    Width,
)
from kbuilder.spec.figures import GLOBAL_STEP, FieldStep, Params, TensorShape, channels, positions
from kbuilder.spec.kind import LayerSpec, WeightedLayerSpec, layer_kind


@layer_kind("input", shorthand="shape", category="io")
class InputLayer(LayerSpec):
    """A model input; starts a new chain of layers. Usually declared under `inputs:`."""

    shape: Shape
    dtype: Literal["float32", "float16", "bfloat16", "int32", "int64", "uint8", "bool"] = Field(
        "float32", description="Element type of the input."
    )

    def out_channels(self, inputs: list[int | None]) -> int | None:
        return self.shape[-1]

    def output_shape(self, inputs: list[TensorShape]) -> TensorShape:
        return (None, *self.shape)


@layer_kind("dense", shorthand="units", keras_class="Dense")
class Dense(WeightedLayerSpec):
    """Fully connected layer: `activation(x @ kernel + bias)`."""

    units: Units
    activity_regularizer: Regularizer | None = None

    def output_shape(self, inputs: list[TensorShape]) -> TensorShape:
        return (*inputs[0][:-1], self.units)

    def params(self, inputs: list[TensorShape]) -> Params:
        return self.kernel_params(inputs)

    def macs(self, inputs: list[TensorShape], output: TensorShape) -> int:
        # One input vector per position (every axis but batch and features): in x out each.
        return positions(inputs[0]) * channels(inputs[0]) * self.units


@layer_kind("activation", shorthand="activation", keras_class="Activation", category="activation")
class Activation(LayerSpec):
    """Applies a named activation function, e.g. `- activation: relu`."""

    keeps_shape = True

    activation: ActivationName = Field(description="Keras activation name.")


@layer_kind("relu", keras_class="ReLU", category="activation")
class ReLU(LayerSpec):
    """Rectified linear unit with optional cap, slope and threshold."""

    keeps_shape = True

    max_value: float | None = Field(None, gt=0, description="Cap on the output (6 gives ReLU6).")
    negative_slope: float = Field(0.0, ge=0, description="Slope below the threshold.")
    threshold: float = Field(0.0, description="Values below it are zeroed (or scaled by negative_slope).")


@layer_kind("leaky_relu", shorthand="negative_slope", keras_class="LeakyReLU", category="activation")
class LeakyReLU(LayerSpec):
    """max(negative_slope * x, x); the notes use a slope of 0.1."""

    keeps_shape = True

    negative_slope: float = Field(0.3, ge=0, description="Slope for x < 0 (Keras default 0.3).")


@layer_kind("elu", shorthand="alpha", keras_class="ELU", category="activation")
class ELU(LayerSpec):
    """x for x >= 0, alpha * (exp(x) - 1) otherwise."""

    keeps_shape = True

    alpha: float = Field(1.0, gt=0, description="Scale of the negative part.")


@layer_kind("prelu", keras_class="PReLU", category="activation")
class PReLU(LayerSpec):
    """Leaky ReLU whose slope is learned per unit."""

    shared_axes: list[Axis] | None = Field(
        None, max_length=8, description="Axes that share one slope (e.g. [1, 2] for images)."
    )
    keeps_shape = True

    def params(self, inputs: list[TensorShape]) -> Params:
        shape = inputs[0]
        shared = {a % len(shape) for a in (self.shared_axes or [])}
        return Params(math.prod(int(d or 1) for i, d in enumerate(shape) if i > 0 and i not in shared))


@layer_kind("softmax", shorthand="axis", keras_class="Softmax", category="activation")
class Softmax(LayerSpec):
    """Softmax over an axis."""

    keeps_shape = True

    axis: Axis = -1


@layer_kind("dropout", shorthand="rate", keras_class="Dropout", category="regularization")
class Dropout(LayerSpec):
    """Randomly zeroes a fraction of units while training; `noise_shape: [null, 1, 1, 1]` drops
    whole samples of a residual branch (stochastic depth, as EfficientNet does)."""

    keeps_shape = True

    rate: DropoutRate
    noise_shape: list[Annotated[int, Field(gt=0)] | None] | None = Field(
        None,
        min_length=1,
        max_length=8,
        description="Shape of the drop mask WITH the batch axis; 1 shares a decision along an axis, null keeps it.",
    )
    seed: Seed = None


@layer_kind("spatial_dropout1d", shorthand="rate", keras_class="SpatialDropout1D", category="regularization")
class SpatialDropout1D(LayerSpec):
    """Drops whole channels of a sequence."""

    input_rank = 3  # steps and channels

    keeps_shape = True

    rate: DropoutRate
    seed: Seed = None


@layer_kind("spatial_dropout2d", shorthand="rate", keras_class="SpatialDropout2D", category="regularization")
class SpatialDropout2D(LayerSpec):
    """Drops whole feature maps of an image."""

    input_rank = 4  # height, width and channels

    keeps_shape = True

    rate: DropoutRate
    seed: Seed = None


@layer_kind("flatten", keras_class="Flatten", category="shape")
class Flatten(LayerSpec):
    """Flattens everything but the batch dimension."""

    def out_channels(self, inputs: list[int | None]) -> int | None:
        return None  # the product of every axis: not known from channels alone

    def output_shape(self, inputs: list[TensorShape]) -> TensorShape:
        dims = inputs[0][1:]
        return (None, None if None in dims else math.prod(int(d) for d in dims if d is not None))

    def field_step(self, inputs: list[TensorShape]) -> FieldStep:
        return GLOBAL_STEP


@layer_kind("reshape", shorthand="target_shape", keras_class="Reshape", category="shape")
class Reshape(LayerSpec):
    """Reshapes to `target_shape` (without batch; one entry may be -1)."""

    target_shape: list[Annotated[int, Field(ge=-1, le=MAX_DIMENSION)]] = Field(
        min_length=1, max_length=8, description="New shape without the batch dimension."
    )

    def out_channels(self, inputs: list[int | None]) -> int | None:
        return self.target_shape[-1] if self.target_shape[-1] > 0 else None

    def output_shape(self, inputs: list[TensorShape]) -> TensorShape:
        target: list[int | None] = list(self.target_shape)
        if -1 in target:
            dims = inputs[0][1:]
            size = None if None in dims else math.prod(int(d) for d in dims if d is not None)
            rest = math.prod(d for d in self.target_shape if d != -1)
            target[target.index(-1)] = None if size is None or size % rest else size // rest
        return (None, *target)

    def field_step(self, inputs: list[TensorShape]) -> FieldStep:
        return GLOBAL_STEP


@layer_kind("rescaling", shorthand="scale", keras_class="Rescaling", category="preprocessing")
class Rescaling(LayerSpec):
    """x * scale + offset (e.g. scale 1/255 maps pixels to [0, 1])."""

    keeps_shape = True

    scale: float = Field(description="Multiplier.")
    offset: float = Field(0.0, description="Added after scaling.")


@layer_kind("embedding", keras_class="Embedding", category="core")
class Embedding(LayerSpec):
    """Maps integer token ids in [0, input_dim) to dense vectors."""

    input_dim: Width = Field(description="Vocabulary size.")
    output_dim: Width = Field(description="Embedding vector size.")
    embeddings_initializer: Initializer | None = None
    embeddings_regularizer: Regularizer | None = None

    def output_shape(self, inputs: list[TensorShape]) -> TensorShape:
        return (*inputs[0], self.output_dim)

    def params(self, inputs: list[TensorShape]) -> Params:
        return Params(self.input_dim * self.output_dim)
