"""The PNG grids of `kbuilder inspect`: feature maps, filters, the Grad-CAM overlay."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from kbuilder.use.figures import displayable, plt, save


def _grid(count: int, tile: float = 1.3) -> tuple[Any, np.ndarray]:
    columns = min(8, max(1, count))
    rows = math.ceil(count / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(tile * columns, tile * rows + 0.6), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    return figure, axes


def feature_map_grid(maps: np.ndarray, name: str, path: Path, max_channels: int) -> str:
    """One tile per channel of `maps` [height, width, channels], each scaled on its own."""
    channels = min(maps.shape[-1], max_channels)
    figure, axes = _grid(channels)
    for index, ax in zip(range(channels), axes.flat):
        ax.imshow(maps[..., index], cmap="viridis")
        ax.set_title(str(index), fontsize=7)
    shown = f" (first {channels} of {maps.shape[-1]})" if channels < maps.shape[-1] else ""
    figure.suptitle(f"{name}: {maps.shape[0]}x{maps.shape[1]}x{maps.shape[-1]} feature maps{shown}")
    figure.tight_layout()
    return save(figure, path)


def filter_grid(kernel: np.ndarray, name: str, path: Path) -> str:
    """A convolution's kernels [kh, kw, in, out]: RGB for three input channels, else their mean."""
    count = kernel.shape[-1]
    figure, axes = _grid(count, tile=1.1)
    for index, ax in zip(range(count), axes.flat):
        weights = kernel[..., index]
        if weights.shape[-1] != 3:
            weights = weights.mean(axis=-1)
        image, cmap = displayable(weights)
        ax.imshow(image, cmap=cmap)
        ax.set_title(str(index), fontsize=7)
    figure.suptitle(f"{name}: {count} filters {kernel.shape[0]}x{kernel.shape[1]}x{kernel.shape[2]}")
    figure.tight_layout()
    return save(figure, path)


def grad_cam_overlay(image: np.ndarray, cam: np.ndarray, caption: str, path: Path) -> str:
    """The input beside the map upsampled to its size and laid over it."""
    height, width = image.shape[:2]
    upsampled = np.asarray(
        Image.fromarray(cam.astype("float32"), mode="F").resize((width, height), Image.Resampling.BILINEAR)
    )
    shown, cmap = displayable(image)
    figure, axes = plt.subplots(1, 3, figsize=(9, 3.3))
    axes[0].imshow(shown, cmap=cmap)
    axes[0].set_title("input (preprocessed)", fontsize=9)
    axes[1].imshow(cam, cmap="jet", vmin=0, vmax=1)
    axes[1].set_title(f"map {cam.shape[0]}x{cam.shape[1]}", fontsize=9)
    axes[2].imshow(shown, cmap=cmap)
    axes[2].imshow(upsampled, cmap="jet", alpha=0.45, vmin=0, vmax=1)
    axes[2].set_title("overlay", fontsize=9)
    for ax in axes:
        ax.axis("off")
    figure.suptitle(caption)
    figure.tight_layout()
    return save(figure, path)
