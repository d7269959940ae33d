"""Convolution layer kinds (Keras argument names and semantics, channels-last)."""

from typing import Annotated

from pydantic import Field

from kbuilder.spec.fields import (
    Dilation2D,
    Filters,
    Initializer,
    KernelSize2D,
    OptionalActivation,
    PadAmount,
    Padding,
    Padding1D,
    Regularizer,
    Size1D,
    Strides2D,
    UseBias,
    Width,
)
from kbuilder.spec.registry import LayerSpec, WeightedLayerSpec, layer_kind

PadPair = Annotated[list[PadAmount], Field(min_length=2, max_length=2)]


@layer_kind("conv1d", keras_class="Conv1D", category="conv")
class Conv1D(WeightedLayerSpec):
    """1D convolution over (steps, channels), e.g. n-gram filters over word embeddings."""

    filters: Filters
    kernel_size: Size1D = Field(description="Window length.")
    strides: Size1D = Field(1, description="Step of the window.")
    padding: Padding1D = "valid"
    dilation_rate: Size1D = Field(1, description="Dilation rate.")
    groups: Width = Field(1, description="Channel groups; input and output channels must divide by it.")


@layer_kind("conv2d", keras_class="Conv2D", category="conv")
class Conv2D(WeightedLayerSpec):
    """2D convolution; `groups: 2` gives AlexNet's two-GPU split."""

    filters: Filters
    kernel_size: KernelSize2D
    strides: Strides2D = 1
    padding: Padding = "valid"
    dilation_rate: Dilation2D = 1
    groups: Width = Field(1, description="Channel groups; input and output channels must divide by it.")


@layer_kind("depthwise_conv2d", keras_class="DepthwiseConv2D", category="conv")
class DepthwiseConv2D(LayerSpec):
    """One spatial filter per input channel (times depth_multiplier)."""

    kernel_size: KernelSize2D
    strides: Strides2D = 1
    padding: Padding = "valid"
    depth_multiplier: Width = Field(1, description="Output channels per input channel.")
    dilation_rate: Dilation2D = 1
    activation: OptionalActivation = None
    use_bias: UseBias = True
    depthwise_initializer: Initializer | None = None
    bias_initializer: Initializer | None = None
    depthwise_regularizer: Regularizer | None = None
    bias_regularizer: Regularizer | None = None


@layer_kind("separable_conv2d", keras_class="SeparableConv2D", category="conv")
class SeparableConv2D(LayerSpec):
    """Depthwise convolution followed by a 1x1 pointwise convolution."""

    filters: Filters
    kernel_size: KernelSize2D
    strides: Strides2D = 1
    padding: Padding = "valid"
    depth_multiplier: Width = Field(1, description="Depthwise output channels per input channel.")
    dilation_rate: Dilation2D = 1
    activation: OptionalActivation = None
    use_bias: UseBias = True
    depthwise_initializer: Initializer | None = None
    pointwise_initializer: Initializer | None = None
    bias_initializer: Initializer | None = None
    depthwise_regularizer: Regularizer | None = None
    pointwise_regularizer: Regularizer | None = None
    bias_regularizer: Regularizer | None = None


@layer_kind("zero_padding1d", shorthand="padding", keras_class="ZeroPadding1D", category="shape")
class ZeroPadding1D(LayerSpec):
    """Pads a sequence with zeros at both ends."""

    padding: PadAmount | PadPair = Field(1, description="Zeros at each end, or [start, end].")


@layer_kind("zero_padding2d", shorthand="padding", keras_class="ZeroPadding2D", category="shape")
class ZeroPadding2D(LayerSpec):
    """Pads an image with zeros: `2`, `[h, w]` or `[[top, bottom], [left, right]]`."""

    padding: PadAmount | PadPair | Annotated[list[PadPair], Field(min_length=2, max_length=2)] = Field(
        1, description="Rows/columns of zeros to add."
    )


@layer_kind("upsampling2d", shorthand="size", keras_class="UpSampling2D", category="shape")
class UpSampling2D(LayerSpec):
    """Repeats rows and columns (nearest) or interpolates (bilinear)."""

    size: Strides2D = 2
    interpolation: str = Field(
        "nearest",
        pattern="^(nearest|bilinear|bicubic|lanczos3|lanczos5)$",
        description="Interpolation method.",
    )
