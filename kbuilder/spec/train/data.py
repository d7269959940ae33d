"""The `train.data` section: where the data comes from, how it is split and preprocessed.

Relative paths are looked up in the current directory first, then beside the spec file.
"""

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from kbuilder.spec.base import StrictModel
from kbuilder.spec.train.augment import Augment

PathText = Annotated[str, Field(min_length=1, max_length=4096, description="A file or folder path.")]
ArrayKey = Annotated[
    str, Field(min_length=1, max_length=200, description="An array name inside an .npz file.")
]
KerasDatasetName = Literal["mnist", "fashion_mnist", "cifar10", "cifar100"]


class KerasSource(StrictModel):
    """A Keras built-in data set; `<name>.npz` in the data directory is used first (offline runs)."""

    type: Literal["keras"] = Field(description="Load through keras.datasets.")
    name: KerasDatasetName = Field(description="Which data set: mnist, fashion_mnist, cifar10 or cifar100.")
    label_mode: Literal["fine", "coarse"] = Field(
        "fine", description="CIFAR-100 labels: 100 fine or 20 coarse classes."
    )


class NpzSource(StrictModel):
    """Arrays in one .npz file; the default keys are Keras's layout (x_train, y_train, x_test, y_test)."""

    type: Literal["npz"] = Field(description="Load arrays from an .npz file.")
    path: PathText
    x_key: ArrayKey = "x_train"
    y_key: ArrayKey = "y_train"
    test_x_key: ArrayKey | None = Field("x_test", description="Test inputs; used when the file has them.")
    test_y_key: ArrayKey | None = Field("y_test", description="Test labels; used when the file has them.")


class NpySource(StrictModel):
    """Inputs and labels in separate .npy files."""

    type: Literal["npy"] = Field(description="Load arrays from .npy files.")
    x: PathText
    y: PathText
    test_x: PathText | None = Field(None, description="Test inputs (.npy), optional.")
    test_y: PathText | None = Field(None, description="Test labels (.npy), needed with test_x.")

    @model_validator(mode="after")
    def _test_pair(self):
        if (self.test_x is None) != (self.test_y is None):
            raise ValueError("give both test_x and test_y, or neither")
        return self


class ImageFolderSource(StrictModel):
    """One sub-folder per class (keras.utils.image_dataset_from_directory), loaded into memory."""

    type: Literal["image_folder"] = Field(description="Load images from class folders.")
    directory: PathText
    test_directory: PathText | None = Field(
        None, description="A second folder of the same layout for the test set."
    )
    image_size: list[Annotated[int, Field(gt=0, le=8192)]] | None = Field(
        None, min_length=2, max_length=2, description="[height, width]; default: the model input's."
    )
    color_mode: Literal["grayscale", "rgb", "rgba"] | None = Field(
        None, description="Channels to load; default: from the model input (1 grayscale, 3 rgb, 4 rgba)."
    )


class InlineSource(StrictModel):
    """Small arrays written in the spec (e.g. the XOR truth table)."""

    type: Literal["inline"] = Field(description="Arrays given in the spec.")
    x: list[Any] = Field(
        min_length=1, max_length=10000, description="Input samples (nested lists of numbers)."
    )
    y: list[Any] = Field(min_length=1, max_length=10000, description="Labels, one per sample.")
    test_x: list[Any] | None = Field(
        None, min_length=1, max_length=10000, description="Test samples, optional."
    )
    test_y: list[Any] | None = Field(
        None, min_length=1, max_length=10000, description="Test labels, with test_x."
    )

    @model_validator(mode="after")
    def _same_length(self):
        if len(self.x) != len(self.y):
            raise ValueError(f"x has {len(self.x)} samples but y has {len(self.y)}")
        if (self.test_x is None) != (self.test_y is None):
            raise ValueError("give both test_x and test_y, or neither")
        if self.test_x is not None and len(self.test_x) != len(self.test_y):
            raise ValueError(f"test_x has {len(self.test_x)} samples but test_y has {len(self.test_y)}")
        return self


DataSource = Annotated[
    KerasSource | NpzSource | NpySource | ImageFolderSource | InlineSource,
    Field(
        discriminator="type",
        description="Where the samples come from (`type`: keras, npz, npy, image_folder, inline).",
    ),
]


class SplitValidation(StrictModel):
    """Hold out a fraction of the (shuffled) training data for validation."""

    type: Literal["split"] = Field(description="Validate on a held-out part of the training data.")
    fraction: float = Field(0.1, gt=0.0, lt=1.0, description="Fraction of training samples held out.")


class TestAsValidation(StrictModel):
    """Validate on the test set (what the notes do; do not tune on it)."""

    type: Literal["test"] = Field(description="Use the test set as validation data.")


class SourceValidation(StrictModel):
    """A separate validation set; its training arrays are used."""

    type: Literal["source"] = Field(description="Validate on another data source.")
    source: DataSource


class NoValidation(StrictModel):
    """Train without validation (callbacks then monitor the training loss)."""

    type: Literal["none"] = Field(description="No validation data.")


Validation = Annotated[
    SplitValidation | TestAsValidation | SourceValidation | NoValidation,
    Field(discriminator="type", description="Validation data (`type`: split, test, source, none)."),
]


class Rescale(StrictModel):
    """x * scale + offset (1/255 gives [0, 1]; scale 1/127.5 with offset -1 gives [-1, 1])."""

    type: Literal["rescale"] = Field(description="Affine rescaling of the inputs.")
    scale: float = Field(gt=0, description="Multiplier.")
    offset: float = Field(0.0, ge=-1e6, le=1e6, description="Added after scaling.")


class Normalize(StrictModel):
    """(x - mean) / std per channel (last axis); statistics from the training data when not given."""

    type: Literal["normalize"] = Field(description="Per-channel standardization.")
    mean: float | list[float] | None = Field(
        None, description="Mean (one value or one per channel); default: computed."
    )
    std: float | list[float] | None = Field(None, description="Standard deviation; default: computed.")

    @model_validator(mode="after")
    def _positive_std(self):
        stds = self.std if isinstance(self.std, list) else [self.std] if self.std is not None else []
        if any(s <= 0 for s in stds):
            raise ValueError("std must be > 0")
        return self


class Pad(StrictModel):
    """Constant padding of the two spatial axes (LeNet-5: 28x28 MNIST padded by 2 to 32x32)."""

    type: Literal["pad"] = Field(description="Pad height and width.")
    padding: int | list[Annotated[int, Field(ge=0, le=4096)]] = Field(
        description="Pixels on every side, or [rows, cols], or [top, bottom, left, right]."
    )
    value: float = Field(0.0, ge=-1e6, le=1e6, description="Fill value.")

    @model_validator(mode="after")
    def _shape(self):
        items = self.padding if isinstance(self.padding, list) else [self.padding]
        if len(items) not in (1, 2, 4) or any(p < 0 for p in items):
            raise ValueError("padding is one number, [rows, cols] or [top, bottom, left, right], all >= 0")
        return self


class Resize(StrictModel):
    """Resize images to [height, width]."""

    type: Literal["resize"] = Field(description="Resize images.")
    size: list[Annotated[int, Field(gt=0, le=8192)]] = Field(
        min_length=2, max_length=2, description="[height, width]."
    )
    interpolation: Literal["bilinear", "nearest", "bicubic", "area"] = Field(
        "bilinear", description="Resampling method."
    )


class AddChannelAxis(StrictModel):
    """[N, H, W] -> [N, H, W, 1] for convolutional models."""

    type: Literal["add_channel_axis"] = Field(description="Append a channel axis of size 1.")


class Reshape(StrictModel):
    """Reshape every sample (the batch axis is kept)."""

    type: Literal["reshape"] = Field(description="Reshape samples.")
    shape: list[Annotated[int, Field(ge=-1, le=1 << 30)]] = Field(
        min_length=1, max_length=8, description="New sample shape; one -1 allowed."
    )


class OneHot(StrictModel):
    """Integer labels -> one-hot rows (done automatically for categorical_crossentropy)."""

    type: Literal["one_hot"] = Field(description="One-hot encode the labels.")
    num_classes: int | None = Field(
        None, gt=1, le=1_000_000, description="Classes; default: the model's output width."
    )


Preprocess = Annotated[
    Rescale | Normalize | Pad | Resize | AddChannelAxis | Reshape | OneHot,
    Field(discriminator="type", description="A preprocessing step, applied once to every split in order."),
]


class DataSpec(StrictModel):
    """The data a model trains on, with its validation and test sets and preprocessing."""

    source: DataSource
    validation: Validation = Field(
        default_factory=lambda: SplitValidation(type="split"), description="Validation data."
    )
    evaluate_test: bool = Field(
        True, description="Evaluate on the source's test set at the end (when it has one)."
    )
    limit: int | None = Field(
        None, gt=0, description="Use only the first N training samples (quick runs, tests)."
    )
    test_limit: int | None = Field(None, gt=0, description="Use only the first N test samples.")
    preprocess: list[Preprocess] = Field(
        default_factory=list, max_length=32, description="Steps applied to every split, in order."
    )
    augment: list[Augment] = Field(
        default_factory=list, max_length=16, description="Random augmentation of training batches."
    )
    classes: list[Annotated[str, Field(min_length=1, max_length=200)]] | None = Field(
        None,
        min_length=1,
        max_length=100_000,
        description="Class names in label order (as many as output units); `kbuilder predict` and exports show them.",
    )
    shuffle: bool = Field(True, description="Reshuffle the training data every epoch.")
    repeat: int = Field(
        1, ge=1, le=1_000_000, description="Passes over the training data per epoch (tiny sets such as XOR)."
    )
    bootstrap: int | None = Field(
        None,
        ge=0,
        le=2**31 - 1,
        description="Bagging: train on N draws with replacement from the N training samples, drawn with this seed.",
    )

    @model_validator(mode="after")
    def _distinct_classes(self):
        if self.classes is not None and len(set(self.classes)) != len(self.classes):
            repeated = sorted({c for c in self.classes if self.classes.count(c) > 1})
            raise ValueError(f"class names must be distinct; repeated: {', '.join(repeated[:5])}")
        return self
