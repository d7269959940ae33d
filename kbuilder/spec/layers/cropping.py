"""Cropping kinds: cut rows/columns off the edges (U-Net crops the skip connection to fit)."""

from typing import Annotated

from pydantic import Field

from kbuilder.spec.figures import TensorShape, padded
from kbuilder.spec.kind import LayerSpec, layer_kind

Cut = Annotated[int, Field(ge=0, le=1_000_000)]
EndPair = Annotated[list[Cut], Field(min_length=2, max_length=2)]


@layer_kind("cropping1d", shorthand="cropping", keras_class="Cropping1D", category="shape")
class Cropping1D(LayerSpec):
    """Cuts steps off both ends of a sequence: `2` or `[start, end]`."""

    input_rank = 3  # steps and channels

    cropping: Cut | EndPair = Field(1, description="Steps to cut at each end, or [start, end].")

    def output_shape(self, inputs: list[TensorShape]) -> TensorShape:
        return padded(inputs[0], self.cropping, -1)


@layer_kind("cropping2d", shorthand="cropping", keras_class="Cropping2D", category="shape")
class Cropping2D(LayerSpec):
    """Cuts rows and columns off an image: `2`, `[h, w]` (each side) or `[[top, bottom], [left, right]]`."""

    input_rank = 4  # height, width and channels

    cropping: Cut | EndPair | Annotated[list[EndPair], Field(min_length=2, max_length=2)] = Field(
        0,
        description="Rows/columns to cut: one integer, [h, w] (both sides) or [[top, bottom], [left, right]].",
    )

    def output_shape(self, inputs: list[TensorShape]) -> TensorShape:
        return padded(inputs[0], self.cropping, -1)
