"""Normalization layer kinds."""

from typing import Annotated

from pydantic import Field, model_validator

from kbuilder.spec.fields import Axis, Initializer, Regularizer
from kbuilder.spec.registry import LayerSpec, layer_kind


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


@layer_kind("layer_norm", keras_class="LayerNormalization", category="normalization")
class LayerNorm(LayerSpec):
    """Layer normalization over the given axis."""

    axis: Axis = -1
    epsilon: float = Field(1e-3, gt=0, description="Added to the variance for stability.")
    center: bool = Field(True, description="Learn an offset (beta).")
    scale: bool = Field(True, description="Learn a scale (gamma).")


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

    @model_validator(mode="after")
    def _mean_with_variance(self):
        if (self.mean is None) != (self.variance is None):
            raise ValueError("give both mean and variance, or neither (then they are stored weights)")
        return self
