"""Pooling layer kinds: windows without weights (0 MACs, as in the papers' tables)."""

from pydantic import Field

from kbuilder.spec.fields import Padding, Size1D, Size2D
from kbuilder.spec.figures import GLOBAL_STEP, FieldStep, TensorShape, pair, window_step, windowed_shape
from kbuilder.spec.kind import LayerSpec, layer_kind


class _Pool(LayerSpec):
    """A window over each channel, moving by `strides` (default: the window)."""

    def output_shape(self, inputs: list[TensorShape]) -> TensorShape:
        return windowed_shape(self, inputs[0], "pool_size", inputs[0][-1])

    def field_step(self, inputs: list[TensorShape]) -> FieldStep:
        return window_step(self, inputs[0], "pool_size")


class _Pool2D(_Pool):
    pool_size: Size2D = Field(2, description="Window size: one integer or [h, w].")
    strides: Size2D | None = Field(
        None, description="Step of the window; default: pool_size (non-overlapping)."
    )
    padding: Padding = "valid"


class _Pool1D(_Pool):
    pool_size: Size1D = Field(2, description="Window length.")
    strides: Size1D | None = Field(None, description="Step of the window; default: pool_size.")
    padding: Padding = "valid"


class _GlobalPool(LayerSpec):
    keepdims: bool = Field(False, description="Keep the pooled axes with size 1.")

    def output_shape(self, inputs: list[TensorShape]) -> TensorShape:
        shape = inputs[0]
        return (None, *(1,) * (len(shape) - 2), shape[-1]) if self.keepdims else (None, shape[-1])

    def field_step(self, inputs: list[TensorShape]) -> FieldStep:
        return GLOBAL_STEP


@layer_kind("max_pooling2d", shorthand="pool_size", keras_class="MaxPooling2D", category="pooling")
class MaxPooling2D(_Pool2D):
    """Maximum over each window (AlexNet's overlapping pooling: pool_size 3, strides 2)."""

    input_rank = 4  # height, width and channels


@layer_kind("average_pooling2d", shorthand="pool_size", keras_class="AveragePooling2D", category="pooling")
class AveragePooling2D(_Pool2D):
    """Mean over each window."""

    input_rank = 4  # height, width and channels


@layer_kind("max_pooling1d", shorthand="pool_size", keras_class="MaxPooling1D", category="pooling")
class MaxPooling1D(_Pool1D):
    """Maximum over each window of a sequence."""

    input_rank = 3  # steps and channels


@layer_kind("average_pooling1d", shorthand="pool_size", keras_class="AveragePooling1D", category="pooling")
class AveragePooling1D(_Pool1D):
    """Mean over each window of a sequence."""

    input_rank = 3  # steps and channels


@layer_kind("global_average_pooling2d", keras_class="GlobalAveragePooling2D", category="pooling")
class GlobalAveragePooling2D(_GlobalPool):
    """Mean over all positions of each feature map."""

    input_rank = 4  # height, width and channels


@layer_kind("global_max_pooling2d", keras_class="GlobalMaxPooling2D", category="pooling")
class GlobalMaxPooling2D(_GlobalPool):
    """Maximum over all positions of each feature map."""

    input_rank = 4  # height, width and channels


@layer_kind("global_average_pooling1d", keras_class="GlobalAveragePooling1D", category="pooling")
class GlobalAveragePooling1D(_GlobalPool):
    """Mean over time of each channel."""

    input_rank = 3  # steps and channels


@layer_kind("global_max_pooling1d", keras_class="GlobalMaxPooling1D", category="pooling")
class GlobalMaxPooling1D(_GlobalPool):
    """Maximum over time of each channel (max-over-time pooling, Kim 2014)."""

    input_rank = 3  # steps and channels


class _Adaptive2D(LayerSpec):
    output_size: Size2D = Field(description="Output height and width, whatever the input size.")

    def output_shape(self, inputs: list[TensorShape]) -> TensorShape:
        return (None, *pair(self.output_size, 2), inputs[0][-1])


@layer_kind(
    "adaptive_average_pooling2d",
    shorthand="output_size",
    keras_class="AdaptiveAveragePooling2D",
    category="pooling",
)
class AdaptiveAveragePooling2D(_Adaptive2D):
    """Average pooling to a fixed output size (PyTorch's AdaptiveAvgPool2d, e.g. AlexNet's 6x6)."""


@layer_kind(
    "adaptive_max_pooling2d", shorthand="output_size", keras_class="AdaptiveMaxPooling2D", category="pooling"
)
class AdaptiveMaxPooling2D(_Adaptive2D):
    """Max pooling to a fixed output size."""
