"""Transposed ("deconvolution") layer kinds: the learned upsampling of U-Nets and decoders.

Keras argument names and semantics, channels-last. Output size per axis (dilation 1):
`valid`: (in - 1) * stride + kernel (+ output_padding); `same`: in * stride, or with
output_padding (in - 1) * stride + kernel - 2 * (kernel // 2) + output_padding.
"""

from typing import Annotated, ClassVar

from pydantic import Field, model_validator

from kbuilder.spec.fields import Dilation2D, Filters, KernelSize2D, Padding, Size1D, Strides2D
from kbuilder.spec.registry import WeightedLayerSpec, layer_kind

Pad = Annotated[int, Field(ge=0)]


def _pair(value) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, list) else (value, value)


class _Transposed(WeightedLayerSpec):
    # A transposed window grows its input: kbuilder.build.checks must not ask it to fit.
    transposed: ClassVar[bool] = True

    @model_validator(mode="after")
    def _output_padding_below_stride(self):
        if self.output_padding is None:
            return self
        pads, strides = _pair(self.output_padding), _pair(self.strides)
        if any(p >= s for p, s in zip(pads, strides)):
            raise ValueError(
                f"output_padding {self.output_padding} must be less than the strides {self.strides} on every axis"
            )
        return self


@layer_kind("conv1d_transpose", keras_class="Conv1DTranspose", category="conv")
class Conv1DTranspose(_Transposed):
    """Transposed 1D convolution over (steps, channels): upsamples a sequence by `strides`."""

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

    filters: Filters
    kernel_size: KernelSize2D
    strides: Strides2D = 1
    padding: Padding = "valid"
    output_padding: Pad | Annotated[list[Pad], Field(min_length=2, max_length=2)] | None = Field(
        None,
        description="Extra rows/columns on one side of the output: one integer or [h, w], each less than the stride.",
    )
    dilation_rate: Dilation2D = 1
