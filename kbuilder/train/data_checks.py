"""Checks on loaded data and on image folders, before anything trains.

Arrays: a sample axis on both sides, the same number of inputs and labels, numbers only,
no value beyond float32's range (training computes in float32), and no NaN or infinity (a NaN feature would train into a NaN model and end as a "diverged"
run far from its cause). Image folders: regular image files only; no symbolic link is
followed (one could point out of the folder, or at /dev/zero), and a file whose name says
PNG or JPEG must start like one, so a text file named `.png` is named, not a decoder crash.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np

from kbuilder.errors import DataError

# What the first bytes of each image type keras.utils.image_dataset_from_directory reads must be.
IMAGE_SIGNATURES = {
    ".png": (b"\x89PNG\r\n\x1a\n",),
    ".jpg": (b"\xff\xd8\xff",),
    ".jpeg": (b"\xff\xd8\xff",),
    ".gif": (b"GIF87a", b"GIF89a"),
    ".bmp": (b"BM",),
}
MAX_IMAGE_FOLDER_ENTRIES = 2_000_000


def check_split(name: str, arrays) -> None:
    """Refuse arrays that cannot be a split of samples, naming what was expected and received."""
    x, y = arrays.x, arrays.y
    for part, value in (("inputs", x), ("labels", y)):
        if value.ndim == 0:
            raise DataError(
                f"the {name} {part} are a single scalar ({value.dtype}); expected an array with one row per sample"
            )
        if value.dtype.kind not in "biuf":
            raise DataError(
                f"the {name} {part} are {value.dtype} values; expected numbers (bool, int or float)"
            )
    if len(x) != len(y):
        raise DataError(f"the {name} inputs have {len(x)} samples but the labels have {len(y)}")
    if len(x) == 0:
        raise DataError(f"the {name} set is empty (inputs of shape {tuple(x.shape)})")
    for part, value in (("inputs", x), ("labels", y)):
        if value.dtype.kind == "f":
            bad = ~np.isfinite(value)
            if bad.any():
                samples = np.flatnonzero(bad.reshape(len(value), -1).any(axis=1))
                raise DataError(
                    f"the {name} {part} hold {int(bad.sum())} NaN or infinite values in {len(samples)} samples "
                    f"(the first is sample {int(samples[0])}); expected finite numbers: clean or drop those samples"
                )
            _check_float32_range(name, part, value)


FLOAT32_MAX = float(np.finfo(np.float32).max)


def _check_float32_range(name: str, part: str, value: np.ndarray) -> None:
    """Training computes in float32: a float64 beyond its range would become infinity there."""
    if value.dtype.itemsize <= 4:
        return
    outside = np.abs(value) > FLOAT32_MAX
    if outside.any():
        samples = np.flatnonzero(outside.reshape(len(value), -1).any(axis=1))
        first = int(samples[0])
        raise DataError(
            f"the {name} {part} hold {int(outside.sum())} values outside float32's range (±{FLOAT32_MAX:.3g}) "
            f"in {len(samples)} samples (the first is sample {first}, up to {float(np.abs(value[first]).max()):.3g}); "
            "training computes in float32, where they become infinite: rescale or drop those samples"
        )


def check_image_folder(root: Path) -> None:
    """Every entry of an image folder (recursively) is a real folder or a real image file."""
    root = Path(root)
    seen = 0
    for directory, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            seen += 1
            if seen > MAX_IMAGE_FOLDER_ENTRIES:
                raise DataError(f"the image folder {root} holds more than {MAX_IMAGE_FOLDER_ENTRIES} entries")
            entry = Path(directory) / name
            info = os.lstat(entry)
            if stat.S_ISLNK(info.st_mode):
                raise DataError(
                    f"the image folder {root} holds a symbolic link ({entry} -> {os.readlink(entry)}); "
                    "kbuilder never follows links in an image folder: copy the file in instead"
                )
            if name in dirnames:
                continue
            if not stat.S_ISREG(info.st_mode):
                raise DataError(
                    f"{entry} in the image folder {root} is not a regular file (a device, FIFO or socket)"
                )
            _check_signature(entry)


def _check_signature(path: Path) -> None:
    signatures = IMAGE_SIGNATURES.get(path.suffix.lower())
    if signatures is None:
        return  # Keras skips files that are not images
    with open(path, "rb") as handle:
        head = handle.read(8)
    if not any(head.startswith(s) for s in signatures):
        kind = path.suffix.lower().lstrip(".").upper()
        raise DataError(
            f"{path} is named .{path.suffix.lstrip('.')} but is not a {kind} image (it starts with {head!r})"
        )
