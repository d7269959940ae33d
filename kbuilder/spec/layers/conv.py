"""Convolution layer kinds (Keras argument names and semantics, channels-last), with their
static figures: a convolution costs out_positions x filters x kernel_area x in_channels /
groups multiply-accumulates; depthwise and separable convolutions count their parts."""

from typing import TYPE_CHECKING, Annotated

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
from kbuilder.spec.figures import (
    FieldStep,
    Params,
    TensorShape,
    bias,
    channels,
    padded,
    pair,
    positions,
    window_product,
    window_step,
    windowed_shape,
)
from kbuilder.spec.kind import LayerSpec, WeightedLayerSpec, layer_kind

PadPair = Annotated[list[PadAmount], Field(min_length=2, max_length=2)]


class _Convolution(WeightedLayerSpec):
    """What Conv1D and Conv2D share: `filters` outputs from a grouped, dilated window."""

    if TYPE_CHECKING:  # fields of each subclass, declared there for Pydantic
        filters: int
        kernel_size: int | list[int]
        groups: int

    def output_shape(self, inputs: list[TensorShape]) -> TensorShape:
        return windowed_shape(self, inputs[0], "kernel_size", self.filters, default_stride=1)

    def params(self, inputs: list[TensorShape]) -> Params:
        return self.kernel_params(inputs, self.groups)

    def macs(self, inputs: list[TensorShape], output: TensorShape) -> int:
        taps = window_product(self.kernel_size, inputs[0])
        return positions(output) * self.filters * taps * channels(inputs[0]) // self.groups

    def field_step(self, inputs: list[TensorShape]) -> FieldStep:
        return window_step(self, inputs[0], "kernel_size", default_stride=1)


@layer_kind("conv1d", keras_class="Conv1D", category="conv")
class Conv1D(_Convolution):
    """1D convolution over (steps, channels), e.g. n-gram filters over word embeddings."""

    input_rank = 3  # steps and channels

    filters: Filters
    kernel_size: Size1D = Field(description="Window length.")
    strides: Size1D = Field(1, description="Step of the window.")
    padding: Padding1D = "valid"
    dilation_rate: Size1D = Field(1, description="Dilation rate.")
    groups: Width = Field(1, description="Channel groups; input and output channels must divide by it.")


@layer_kind("conv2d", keras_class="Conv2D", category="conv")
class Conv2D(_Convolution):
    """2D convolution; `groups: 2` gives AlexNet's two-GPU split."""

    input_rank = 4  # height, width and channels

    filters: Filters
    kernel_size: KernelSize2D
    strides: Strides2D = 1
    padding: Padding = "valid"
    dilation_rate: Dilation2D = 1
    groups: Width = Field(1, description="Channel groups; input and output channels must divide by it.")


@layer_kind("depthwise_conv2d", keras_class="DepthwiseConv2D", category="conv")
class DepthwiseConv2D(LayerSpec):
    """One spatial filter per input channel (times depth_multiplier)."""

    input_rank = 4  # height, width and channels

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

    def output_shape(self, inputs: list[TensorShape]) -> TensorShape:
        width = inputs[0][-1]
        return windowed_shape(
            self, inputs[0], "kernel_size", None if width is None else width * self.depth_multiplier, 1
        )

    def params(self, inputs: list[TensorShape]) -> Params:
        outputs = channels(inputs[0]) * self.depth_multiplier
        return Params(window_product(self.kernel_size, inputs[0]) * outputs + bias(self, outputs))

    def macs(self, inputs: list[TensorShape], output: TensorShape) -> int:
        return positions(output) * channels(output) * window_product(self.kernel_size, inputs[0])

    def field_step(self, inputs: list[TensorShape]) -> FieldStep:
        return window_step(self, inputs[0], "kernel_size", default_stride=1)


@layer_kind("separable_conv2d", keras_class="SeparableConv2D", category="conv")
class SeparableConv2D(LayerSpec):
    """Depthwise convolution followed by a 1x1 pointwise convolution."""

    input_rank = 4  # height, width and channels

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

    def output_shape(self, inputs: list[TensorShape]) -> TensorShape:
        return windowed_shape(self, inputs[0], "kernel_size", self.filters, default_stride=1)

    def params(self, inputs: list[TensorShape]) -> Params:
        inner = channels(inputs[0]) * self.depth_multiplier
        depthwise = window_product(self.kernel_size, inputs[0]) * inner
        return Params(depthwise + inner * self.filters + bias(self, self.filters))

    def macs(self, inputs: list[TensorShape], output: TensorShape) -> int:
        inner = channels(inputs[0]) * self.depth_multiplier
        taps = window_product(self.kernel_size, inputs[0])
        return positions(output) * (inner * taps + inner * channels(output))

    def field_step(self, inputs: list[TensorShape]) -> FieldStep:
        return window_step(self, inputs[0], "kernel_size", default_stride=1)


@layer_kind("zero_padding1d", shorthand="padding", keras_class="ZeroPadding1D", category="shape")
class ZeroPadding1D(LayerSpec):
    """Pads a sequence with zeros at both ends."""

    input_rank = 3  # steps and channels

    padding: PadAmount | PadPair = Field(1, description="Zeros at each end, or [start, end].")

    def output_shape(self, inputs: list[TensorShape]) -> TensorShape:
        return padded(inputs[0], self.padding, 1)


@layer_kind("zero_padding2d", shorthand="padding", keras_class="ZeroPadding2D", category="shape")
class ZeroPadding2D(LayerSpec):
    """Pads an image with zeros: `2`, `[h, w]` or `[[top, bottom], [left, right]]`."""

    input_rank = 4  # height, width and channels

    padding: PadAmount | PadPair | Annotated[list[PadPair], Field(min_length=2, max_length=2)] = Field(
        1, description="Rows/columns of zeros to add."
    )

    def output_shape(self, inputs: list[TensorShape]) -> TensorShape:
        return padded(inputs[0], self.padding, 1)


@layer_kind("upsampling2d", shorthand="size", keras_class="UpSampling2D", category="shape")
class UpSampling2D(LayerSpec):
    """Repeats rows and columns (nearest) or interpolates (bilinear)."""

    input_rank = 4  # height, width and channels

    size: Strides2D = 2
    interpolation: str = Field(
        "nearest",
        pattern="^(nearest|bilinear|bicubic|lanczos3|lanczos5)$",
        description="Interpolation method.",
    )

    def output_shape(self, inputs: list[TensorShape]) -> TensorShape:
        factors = pair(self.size, 2)
        shape = inputs[0]
        return (None, *(None if n is None else n * f for n, f in zip(shape[1:-1], factors)), shape[-1])

    def field_step(self, inputs: list[TensorShape]) -> FieldStep:
        return FieldStep("upsample", stride=pair(self.size, 2))
