"""The spec's `train` section (owned by the training work; placeholder shape for now)."""

from __future__ import annotations

from pydantic import Field

from kbuilder.spec.base import StrictModel


class TrainSpec(StrictModel):
    """How to train the model: data, optimizer, loss, epochs, callbacks."""

    epochs: int = Field(1, ge=1, description="Number of passes over the training data.")
