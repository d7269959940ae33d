"""Data augmentation steps (Keras preprocessing layers), run in the input pipeline on training data only."""

from typing import Annotated, Literal

from pydantic import Field

from kbuilder.spec.base import StrictModel

Factor = Annotated[
    float, Field(ge=0.0, le=1.0, description="Fraction (of height, width, turn, or intensity).")
]
FillMode = Literal["constant", "reflect", "wrap", "nearest"]


class RandomTranslation(StrictModel):
    """Shift images by up to a fraction of their height and width."""

    type: Literal["random_translation"] = Field(description="keras.layers.RandomTranslation.")
    height_factor: Factor = 0.1
    width_factor: Factor = 0.1
    fill_mode: FillMode = Field("constant", description="How to fill the uncovered pixels.")


class RandomFlip(StrictModel):
    """Mirror images at random."""

    type: Literal["random_flip"] = Field(description="keras.layers.RandomFlip.")
    mode: Literal["horizontal", "vertical", "horizontal_and_vertical"] = Field(
        "horizontal", description="Which flips."
    )


class RandomRotation(StrictModel):
    """Rotate by up to `factor` of a full turn either way (0.05 is +-18 degrees)."""

    type: Literal["random_rotation"] = Field(description="keras.layers.RandomRotation.")
    factor: Factor = 0.05
    fill_mode: FillMode = Field("constant", description="How to fill the uncovered pixels.")


class RandomZoom(StrictModel):
    """Zoom in or out by up to a fraction."""

    type: Literal["random_zoom"] = Field(description="keras.layers.RandomZoom.")
    height_factor: Factor = 0.1
    width_factor: Factor | None = Field(None, description="Default: the same as height_factor (aspect kept).")
    fill_mode: FillMode = Field("constant", description="How to fill the uncovered pixels.")


class RandomContrast(StrictModel):
    """Scale the contrast by a random factor in [1 - factor, 1 + factor]."""

    type: Literal["random_contrast"] = Field(description="keras.layers.RandomContrast.")
    factor: Factor = 0.2
    value_range: list[float] = Field(
        [0.0, 1.0], min_length=2, max_length=2, description="Range of the pixel values at this point."
    )


class RandomBrightness(StrictModel):
    """Add a random brightness offset of up to `factor` of the value range."""

    type: Literal["random_brightness"] = Field(description="keras.layers.RandomBrightness.")
    factor: Factor = 0.2
    value_range: list[float] = Field(
        [0.0, 1.0], min_length=2, max_length=2, description="Range of the pixel values at this point."
    )


Augment = Annotated[
    RandomTranslation | RandomFlip | RandomRotation | RandomZoom | RandomContrast | RandomBrightness,
    Field(discriminator="type", description="A random augmentation applied to training batches only."),
]
