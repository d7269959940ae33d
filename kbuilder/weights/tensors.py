"""What a weights file holds once read: named arrays in the file's order, nothing executed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

Layout = Literal["keras", "torch"]


@dataclass(frozen=True)
class SourceTensors:
    """The arrays of one weights source, read but not yet matched to a spec.

    `tensors` keeps the file's order (a PyTorch `state_dict`'s order is its modules' order,
    which order matching relies on). For Keras sources, `layers` maps each layer name to its
    tensors' names in the order of `layer.get_weights()`; PyTorch sources leave it empty."""

    path: str
    layout: Layout
    tensors: dict[str, np.ndarray]
    layers: dict[str, list[str]] = field(default_factory=dict)
    # Whether `layers` is in the model's order (legacy HDF5 lists it; Keras 3's files key layers
    # by class, so order matching cannot use them).
    ordered: bool = True

    def describe(self) -> str:
        return f"{self.path} ({self.layout} layout, {len(self.tensors)} tensors)"
