"""The image `kbuilder inspect` looks at, read as the run's data source delivers its samples.

Its shape is the input contract's raw sample (any size when the preprocessing resizes). The
file is refused, naming it, when Pillow cannot read it, when it holds more pixels than
MAX_PIXELS (a decompression bomb is refused from its header, before its pixels are decoded),
when its channel count differs from the data's, or when its size differs and nothing in the
preprocessing resizes. predict's reader (kbuilder.use.inputs) converts channels instead;
the two policies are kept apart as the commands document them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from kbuilder.errors import DataError, UsageError
from kbuilder.use.inputs import raw_target

MAX_PIXELS = 40_000_000  # 40 megapixels: larger than any camera image a network here takes
CHANNELS = {"1": 1, "L": 1, "I": 1, "I;16": 1, "I;16B": 1, "I;16L": 1, "F": 1, "LA": 2, "RGB": 3, "RGBA": 4}
MODE_FOR = {1: "L", 3: "RGB", 4: "RGBA"}


def inspect_shape(contract: dict[str, Any]) -> tuple[int | None, ...]:
    """The shape of one raw sample (None: any size) from the run's input contract."""
    target = raw_target(contract)
    if len(target.shape) not in (2, 3):
        raise UsageError(
            f"the model's raw input {list(target.shape)} is not an image; kbuilder inspect takes image models"
        )
    height, width = (None, None) if target.preprocess_resizes else target.size
    return (height, width, *target.shape[2:])


def read_image(path: str | Path, shape: tuple[int | None, ...]) -> np.ndarray:
    """The image in `path` as a uint8 array of `shape` (height, width[, channels])."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such image file")
    try:
        with Image.open(path) as image:
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise DataError(
                    f"{path}: {width}x{height} pixels; kbuilder reads images of at most {MAX_PIXELS:,} pixels"
                )
            mode = image.mode
            if mode == "P":  # a palette image: its colours (and transparency) decide its channels
                pixels = np.asarray(image.convert("RGBA" if "transparency" in image.info else "RGB"))
                mode = "RGBA" if pixels.shape[-1] == 4 else "RGB"
            else:
                image.load()
                pixels = np.asarray(image)
    except DataError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError, SyntaxError) as exc:
        raise DataError(f"{path}: not an image Pillow can read ({type(exc).__name__}: {exc})") from None
    channels = CHANNELS.get(mode)
    expected = shape[2] if len(shape) == 3 else 1
    if channels != expected:
        wanted = MODE_FOR.get(int(expected or 0), f"{expected}-channel")
        raise DataError(
            f"{path}: a {mode} image with {channels or 'unknown'} channels, but the run's data has {expected} "
            f"(convert it to {wanted} first, e.g. `Image.open(f).convert('{wanted}')` in Pillow)"
        )
    if mode.startswith("I") or mode == "F":  # 16-bit or 32-bit grayscale: onto the 8-bit scale of the data
        top = 65535.0 if mode.startswith("I;16") or pixels.max() > 255 else 255.0
        pixels = np.clip(pixels.astype("float64") * (255.0 / top), 0, 255).round().astype("uint8")
    elif mode == "1":
        pixels = pixels.astype("uint8") * 255
    if len(shape) == 3 and pixels.ndim == 2:
        pixels = pixels[..., None]
    want = tuple(d for d in shape[:2])
    if any(w is not None and w != g for w, g in zip(want, pixels.shape[:2])):
        raise DataError(
            f"{path}: {pixels.shape[1]}x{pixels.shape[0]} pixels (width x height), but the run was trained on "
            f"{want[1]}x{want[0]} images and its preprocessing does not resize; resize the image first"
        )
    return pixels.astype("uint8", copy=False)
