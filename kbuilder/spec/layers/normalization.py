"""Normalization layer kinds: their outputs keep the input's shape; their statistics
(batch norm's moving mean and variance, Normalization's mean, variance and count) are
non-trainable weights."""

import math
from typing import Annotated

from pydantic import Field, model_validator

from kbuilder.spec.fields import Axis, Initializer, Regularizer
from kbuilder.spec.figures import Params, TensorShape
from kbuilder.spec.kind import LayerSpec, layer_kind


@layer_kind("batch_norm", keras_class="BatchNormalization", category="normalization")
class BatchNorm(LayerSpec):
    """Batch normalization (Ioffe & Szegedy 2015): 4 values per channel, 2 trainable."""

    axis: Axis = -1
    momentum: float = Field(0.99, gt=0, lt=1, description="Moving-average momentum.")
    epsilon: float = Field(1e-3, gt=0, description="Added to the variance for stability.")
    center: bool = Field(True, description="Learn an offset (beta).")
    scale: bool = Field(True, description="Learn a scale (gamma).")
    beta_initializer: Initializer | None = None
    gamma_initializer: Initializer | None = None
    beta_regularizer: Regularizer | None = None
    gamma_regularizer: Regularizer | None = None
    keeps_shape = True

    def params(self, inputs: list[TensorShape]) -> Params:
        width = int(inputs[0][self.axis] or 1)
        return Params(width * (int(self.center) + int(self.scale)), 2 * width)  # + moving mean, variance


@layer_kind("layer_norm", keras_class="LayerNormalization", category="normalization")
class LayerNorm(LayerSpec):
    """Layer normalization over the given axis."""

    axis: Axis = -1
    epsilon: float = Field(1e-3, gt=0, description="Added to the variance for stability.")
    center: bool = Field(True, description="Learn an offset (beta).")
    scale: bool = Field(True, description="Learn a scale (gamma).")
    keeps_shape = True

    def params(self, inputs: list[TensorShape]) -> Params:
        return Params(int(inputs[0][self.axis] or 1) * (int(self.center) + int(self.scale)))


Variance = Annotated[float, Field(ge=0)]


@layer_kind("normalization", keras_class="Normalization", category="normalization")
class Normalization(LayerSpec):
    """(x - mean) / sqrt(variance) per channel, Keras's input Normalization. Without `mean` and
    `variance` it stores mean, variance and count as weights (2C + 1 values: 7 for RGB, as in
    EfficientNet), to be set by adapting to data or loading weights."""

    axis: Axis | list[Axis] | None = Field(
        -1, description="The axis (or axes) with one mean and variance each; null: one for the whole tensor."
    )
    mean: float | list[float] | None = Field(
        None, description="Fixed mean(s); give variance too. None: stored weights."
    )
    variance: Variance | list[Variance] | None = Field(None, description="Fixed variance(s), with mean.")
    invert: bool = Field(False, description="Apply the inverse: x * sqrt(variance) + mean.")
    keeps_shape = True

    @model_validator(mode="after")
    def _mean_with_variance(self):
        if (self.mean is None) != (self.variance is None):
            raise ValueError("give both mean and variance, or neither (then they are stored weights)")
        return self

    def params(self, inputs: list[TensorShape]) -> Params:
        """Mean and variance per kept axis and a count, all non-trainable, unless both are fixed."""
        if self.mean is not None:
            return Params()
        axes = self.axis if isinstance(self.axis, list) else ([] if self.axis is None else [self.axis])
        kept = math.prod(int(inputs[0][a] or 1) for a in axes)
        return Params(0, 2 * kept + 1)

    def weight_bytes(self, params: Params) -> int:
        """Mean and variance in float32, the count an int64 (Keras's dtype "int")."""
        return 4 * params.total + (4 if params.total else 0)
