"""Transposed ("deconvolution") layer kinds: the learned upsampling of U-Nets and decoders.

Keras argument names and semantics, channels-last. Output size per axis (dilation 1):
`valid`: (in - 1) * stride + kernel (+ output_padding); `same`: in * stride, or with
output_padding (in - 1) * stride + kernel - 2 * (kernel // 2) + output_padding.
"""

from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from pydantic import Field, model_validator

from kbuilder.spec.fields import Dilation2D, Filters, KernelSize2D, Padding, Size1D, Strides2D
from kbuilder.spec.figures import FieldStep, Params, TensorShape, channels, pair, positions, window_product
from kbuilder.spec.kind import WeightedLayerSpec, layer_kind

Pad = Annotated[int, Field(ge=0)]


class _Transposed(WeightedLayerSpec):
    """A transposed convolution costs in_positions x in_channels x kernel_area x filters
    multiply-accumulates: every input value is multiplied by every weight of its kernel
    (cropped-away `same` borders included, as the operation computes them)."""

    # A transposed window grows its input: kbuilder.graph.checks must not ask it to fit.
    transposed: ClassVar[bool] = True
    if TYPE_CHECKING:  # fields of each subclass, declared there for Pydantic
        filters: int
        kernel_size: int | list[int]
        strides: int | list[int]
        dilation_rate: int | list[int]
        output_padding: Any
        padding: str

    @model_validator(mode="after")
    def _output_padding_below_stride(self):
        if self.output_padding is None:
            return self
        pads, strides = pair(self.output_padding, 2), pair(self.strides, 2)
        if any(p >= s for p, s in zip(pads, strides)):
            raise ValueError(
                f"output_padding {self.output_padding} must be less than the strides {self.strides} on every axis"
            )
        return self

    def output_shape(self, inputs: list[TensorShape]) -> TensorShape:
        rank = len(inputs[0]) - 2
        kernel, strides = pair(self.kernel_size, rank), pair(self.strides, rank)
        dilation = pair(self.dilation_rate, rank)
        pads = None if self.output_padding is None else pair(self.output_padding, rank)
        sizes: list[int | None] = []
        for i, n in enumerate(inputs[0][1:-1]):
            k = (kernel[i] - 1) * dilation[i] + 1
            if n is None:
                sizes.append(None)
            elif pads is None:
                sizes.append(
                    n * strides[i] if self.padding == "same" else (n - 1) * strides[i] + max(k, strides[i])
                )
            else:
                cut = 2 * (k // 2) if self.padding == "same" else 0
                sizes.append((n - 1) * strides[i] + k - cut + pads[i])
        return (None, *sizes, self.filters)

    def params(self, inputs: list[TensorShape]) -> Params:
        return self.kernel_params(inputs)

    def macs(self, inputs: list[TensorShape], output: TensorShape) -> int:
        taps = window_product(self.kernel_size, inputs[0])
        return positions(inputs[0]) * channels(inputs[0]) * taps * self.filters

    def field_step(self, inputs: list[TensorShape]) -> FieldStep:
        rank = len(inputs[0]) - 2
        window, dilation = pair(self.kernel_size, rank), pair(self.dilation_rate, rank)
        effective = tuple((w - 1) * d + 1 for w, d in zip(window, dilation))
        return FieldStep("transposed", effective, pair(self.strides, rank))


@layer_kind("conv1d_transpose", keras_class="Conv1DTranspose", category="conv")
class Conv1DTranspose(_Transposed):
    """Transposed 1D convolution over (steps, channels): upsamples a sequence by `strides`."""

    input_rank = 3  # steps and channels

    filters: Filters
    kernel_size: Size1D = Field(description="Window length.")
    strides: Size1D = Field(1, description="Upsampling factor.")
    padding: Padding = "valid"
    output_padding: Pad | None = Field(
        None, description="Extra steps added at the end of the output; less than the stride."
    )
    dilation_rate: Size1D = Field(1, description="Dilation rate.")


@layer_kind("conv2d_transpose", keras_class="Conv2DTranspose", category="conv")
class Conv2DTranspose(_Transposed):
    """Transposed 2D convolution: upsamples an image by `strides` (U-Net's up-convolution)."""

    input_rank = 4  # height, width and channels

    filters: Filters
    kernel_size: KernelSize2D
    strides: Strides2D = 1
    padding: Padding = "valid"
    output_padding: Pad | Annotated[list[Pad], Field(min_length=2, max_length=2)] | None = Field(
        None,
        description="Extra rows/columns on one side of the output: one integer or [h, w], each less than the stride.",
    )
    dilation_rate: Dilation2D = 1
