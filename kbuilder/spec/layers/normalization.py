"""Normalization layer kinds."""


from pydantic import Field

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
