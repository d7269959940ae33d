"""The result of matching a source's tensors to a spec's layers: what each layer gets."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

# loaded: every weight of the layer comes from the source (converted to Keras's layout);
# new: the layer keeps its initial weights because the spec says so (`exclude`, a new head);
# skipped: a layer without weights, or not asked for (`include` names others).
Status = Literal["loaded", "new", "skipped"]


@dataclass(frozen=True)
class LayerLoad:
    """One weighted spec layer and what it receives. `arrays` are in the order and shapes of
    the Keras layer's `get_weights()`, ready for `set_weights`; empty unless loaded."""

    layer: str
    status: Status
    sources: tuple[str, ...] = ()
    arrays: tuple[np.ndarray, ...] = ()
    note: str = ""  # how it was converted ("OIHW -> HWIO", "flatten order CHW -> HWC", ...)
    source_layer: str = ""  # the source's layer (Keras sources) the tensors came from
    shapes: tuple[tuple[int, ...], ...] = ()  # the spec layer's weight shapes, for the plan's table


@dataclass
class LoadPlan:
    """Every weighted layer of the model, in the model's order, and where its weights come from."""

    source: str
    layout: str
    match: str  # "name", "order" or "map"
    rows: list[LayerLoad] = field(default_factory=list)

    def loaded(self) -> list[LayerLoad]:
        return [row for row in self.rows if row.status == "loaded"]

    def counts(self) -> dict[str, int]:
        counts = {"loaded": 0, "new": 0, "skipped": 0}
        for row in self.rows:
            counts[row.status] += 1
        return counts
