"""Users' inputs as the data source delivered them in training: image files (PNG, JPEG, BMP),
folders of them, and .npy/.npz arrays, checked against the model's raw-input contract.

Images are decoded with Pillow and converted to the channels the contract has (grayscale,
RGB or RGBA; 16-bit images scaled to 8 bits). A size that differs from the contract's is
refused naming both sizes, unless the data source resizes (an image folder: resized as
Keras's loader does) or the preprocessing does (a `resize` step: the image is kept as it is).
Pillow refuses decompression bombs (Image.MAX_IMAGE_PIXELS; its warning is an error here).
Arrays are read with kbuilder's bounded readers (no pickles). Every refusal is a InputError
naming the file; nothing is predicted before every input has been read.
"""

from __future__ import annotations

import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
from PIL import Image, UnidentifiedImageError

from kbuilder.errors import InputError
from kbuilder.train.safe_arrays import NpzArchive, read_npy

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
ARRAY_SUFFIXES = (".npy", ".npz")
IMAGE_FORMATS = ("PNG", "JPEG", "BMP")
NPZ_KEYS = ("x", "x_test", "images", "inputs")  # tried in order when an .npz holds several arrays
# Pillow's modes that convert to grayscale, RGB or RGBA; others (CMYK, YCbCr, LAB, HSV,
# 32-bit float) are refused: their channels mean something else.
CONVERTIBLE_MODES = ("1", "L", "P", "LA", "PA", "RGB", "RGBA", "I;16", "I;16L", "I;16B", "I;16N", "I")
SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N", "I")
DECODE_THREADS = 4  # Pillow releases the GIL while it decodes


@dataclass
class Inputs:
    """Named raw samples, in the order given (folders sorted)."""

    names: list[str]
    samples: list[np.ndarray]


@dataclass(frozen=True)
class RawTarget:
    """What a raw sample must look like: the contract's shape and dtype, and who resizes."""

    shape: tuple[int, ...]
    dtype: str
    source_resizes: bool  # an image folder: the loader resized every image to `shape`
    preprocess_resizes: bool  # a resize step: any size is taken

    @property
    def channels(self) -> int:
        return self.shape[2] if len(self.shape) == 3 else 1

    @property
    def size(self) -> tuple[int, int]:
        return self.shape[0], self.shape[1]


def raw_target(contract: dict[str, Any]) -> RawTarget:
    raw = contract.get("raw_input") or {}
    steps = contract.get("preprocess") or []
    return RawTarget(
        shape=tuple(raw.get("shape") or ()),
        dtype=str(raw.get("dtype") or "float32"),
        source_resizes=str(contract.get("source", "")).startswith("image_folder"),
        preprocess_resizes=any(step.get("type") == "resize" for step in steps),
    )


def expand_paths(paths: list[str | Path]) -> list[Path]:
    """Files as given; folders as the image and array files inside them, sorted."""
    files: list[Path] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            found = sorted(
                p
                for p in path.rglob("*")
                if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES + ARRAY_SUFFIXES
            )
            if not found:
                raise InputError(f"{path}: a folder with no images ({', '.join(IMAGE_SUFFIXES)}) or arrays")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise InputError(f"{path}: no such file or folder")
    return files


def read_inputs(paths: list[str | Path], target: RawTarget) -> Inputs:
    """Every input read and checked; InputError (naming the file) on the first bad one."""
    files = expand_paths(paths)
    unknown = [f for f in files if f.suffix.lower() not in IMAGE_SUFFIXES + ARRAY_SUFFIXES]
    if unknown:
        raise InputError(
            f"{unknown[0]}: not an image ({', '.join(IMAGE_SUFFIXES)}) or array ({', '.join(ARRAY_SUFFIXES)}) file"
        )
    images = [f for f in files if f.suffix.lower() in IMAGE_SUFFIXES]
    with ThreadPoolExecutor(DECODE_THREADS) as pool:
        decoded = dict(zip(images, pool.map(lambda f: read_image(f, target), images)))
    inputs = Inputs([], [])
    for file in files:
        if file in decoded:
            inputs.names.append(str(file))
            inputs.samples.append(decoded[file])
            continue
        batch = _read_array(file, target)
        single = batch.ndim == len(target.shape)
        for index, sample in enumerate([batch] if single else batch):
            inputs.names.append(str(file) if single else f"{file}[{index}]")
            inputs.samples.append(sample)
    return inputs


def read_image(
    path: Path, target: RawTarget, *, same_channels: bool = False, max_pixels: int | None = None
) -> np.ndarray:
    """One image file as a raw sample of `target`'s shape and dtype. predict converts any
    grayscale, RGB or RGBA image to the model's channels; `same_channels` refuses another
    channel count instead, and `max_pixels` bounds the image below Pillow's bomb limit
    (kbuilder inspect, which looks at one image as the data delivered it)."""
    if len(target.shape) not in (2, 3) or target.channels not in (1, 3, 4):
        raise InputError(
            f"{path}: the model's raw input is {list(target.shape)}, not an image "
            "([height, width] or [height, width, 1|3|4]); give .npy or .npz arrays"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(path) as image:
                if image.format not in IMAGE_FORMATS:
                    raise InputError(
                        f"{path}: a {image.format} image; kbuilder reads {', '.join(IMAGE_FORMATS)}"
                    )
                if max_pixels is not None and image.width * image.height > max_pixels:
                    raise InputError(
                        f"{path}: {image.width}x{image.height} pixels; kbuilder reads images of at most "
                        f"{max_pixels:,} pixels"
                    )
                image.load()
                if same_channels:
                    _check_channels(path, image, target)
                pixels = _converted(path, image, target)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise InputError(
                f"{path}: refused as a decompression bomb ({exc}); an input image is at most "
                f"{Image.MAX_IMAGE_PIXELS} pixels"
            ) from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            raise InputError(f"{path}: not an image Pillow can read ({type(exc).__name__}: {exc})") from None
    return _sized(path, pixels, target)


def _check_channels(path: Path, image: Image.Image, target: RawTarget) -> None:
    """Refuse an image whose channel count differs from the data's (a palette image counts
    the channels of its colours: RGBA with transparency, else RGB)."""
    if image.mode in ("P", "PA"):
        channels = 4 if image.mode == "PA" or "transparency" in image.info else 3
    else:
        channels = len(image.getbands())
    if channels != target.channels:
        wanted = {1: "L", 3: "RGB", 4: "RGBA"}[target.channels]
        raise InputError(
            f"{path}: a {image.mode} image with {channels} channels, but the run's data has "
            f"{target.channels} (convert it to {wanted} first, e.g. `Image.open(f).convert('{wanted}')` in Pillow)"
        )


def _converted(path: Path, image: Image.Image, target: RawTarget) -> np.ndarray:
    """The image's pixels in the target's channels, 8-bit values (as float for float targets)."""
    if image.mode not in CONVERTIBLE_MODES:
        bands = len(image.getbands())
        raise InputError(
            f"{path}: a {image.mode} image ({bands} channel{'s' if bands != 1 else ''}); the model "
            f"takes {target.channels} channel{'s' if target.channels != 1 else ''} "
            "(grayscale, RGB or RGBA images are converted)"
        )
    if image.mode in SIXTEEN_BIT:  # 16-bit gray: scaled to the 8-bit range training saw
        wide = np.asarray(image, dtype="float64") / 257.0
        image = Image.fromarray(np.clip(np.rint(wide), 0, 255).astype("uint8"), mode="L")
    mode = {1: "L", 3: "RGB", 4: "RGBA"}[target.channels]
    pixels = np.asarray(image.convert(mode) if image.mode != mode else image)
    if len(target.shape) == 3 and pixels.ndim == 2:
        pixels = pixels[..., None]
    return pixels


def _sized(path: Path, pixels: np.ndarray, target: RawTarget) -> np.ndarray:
    size = pixels.shape[:2]
    if size != target.size:
        if target.source_resizes:  # as keras.utils.image_dataset_from_directory resizes
            resized = keras.ops.image.resize(pixels.astype("float32")[None, ...], target.size)
            pixels = keras.ops.convert_to_numpy(resized)[0]
        elif not target.preprocess_resizes:
            raise InputError(
                f"{path}: an image of {size[1]}x{size[0]} pixels (width x height); the model takes "
                f"{target.size[1]}x{target.size[0]}, and its preprocessing does not resize"
            )
    return pixels.astype(target.dtype)


def _read_array(path: Path, target: RawTarget) -> np.ndarray:
    if path.suffix.lower() == ".npy":
        array = read_npy(path)
    else:
        with NpzArchive(path) as archive:
            keys = archive.files
            key = keys[0] if len(keys) == 1 else next((k for k in NPZ_KEYS if k in keys), None)
            if key is None:
                raise InputError(
                    f"{path}: holds {len(keys)} arrays ({', '.join(keys[:6])}); give one array, or name it "
                    f"one of {', '.join(NPZ_KEYS)}"
                )
            array = archive.read(key)
    if not np.issubdtype(array.dtype, np.number):
        raise InputError(f"{path}: an array of {array.dtype}; the model takes numbers")
    shape = tuple(array.shape)
    if shape != target.shape and shape[1:] != target.shape and not target.preprocess_resizes:
        raise InputError(
            f"{path}: an array of shape {list(shape)}; the model takes samples of shape "
            f"{list(target.shape)} (one sample, or a batch [N, {', '.join(map(str, target.shape))}])"
        )
    return array
