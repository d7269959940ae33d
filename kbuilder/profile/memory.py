"""Memory of a training step per batch size, estimated from the model and the spec's optimizer.

    parameters       every weight (trainable or not), at its dtype's size
    gradients        one per trainable weight
    optimizer state  the slots of the spec's optimizer, counted on a Keras optimizer built for
                     the model's weights (Adam and AdamW 2 per weight, SGD with momentum 1,
                     RMSprop 1 or 2, ...); no train section: Adam
    activations      per sample: the input and every layer's output, kept for the backward
                     pass, plus the gradients in flight where the backward pass holds the
                     most (the gradient of a layer's output and of its input, alive together,
                     at the layer where they are largest); times the batch size

The framework's own memory (the runtime, compiled code, kernels' workspaces) is not in it:
tests/test_profile_memory.py measures it at batch size 1 and compares the rest with the
peak resident memory of real training steps.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import keras
import numpy as np


@dataclass
class MemoryEstimate:
    batch_size: int
    parameters: int
    gradients: int
    optimizer_state: int
    activations: int

    @property
    def total(self) -> int:
        return self.parameters + self.gradients + self.optimizer_state + self.activations

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "total": self.total}


@dataclass
class MemoryModel:
    """What the estimate of any batch size is made of: bytes that do not depend on it, and
    bytes per sample."""

    parameters: int
    gradients: int
    optimizer_state: int
    optimizer: str
    activation_bytes_per_sample: int

    @property
    def fixed(self) -> int:
        return self.parameters + self.gradients + self.optimizer_state

    def at(self, batch_size: int) -> MemoryEstimate:
        return MemoryEstimate(
            batch_size,
            self.parameters,
            self.gradients,
            self.optimizer_state,
            self.activation_bytes_per_sample * batch_size,
        )

    def largest_batch(self, budget: int) -> int:
        """The largest batch size whose estimate fits `budget` bytes (0: not even the weights)."""
        room = budget - self.fixed
        if room < self.activation_bytes_per_sample:
            return 0
        return room // self.activation_bytes_per_sample


def _bytes(variables: Any) -> int:
    return sum(math.prod(v.shape) * np.dtype(str(v.dtype)).itemsize for v in variables)


def memory_model(model: Any, optimizer: Any, optimizer_name: str) -> MemoryModel:
    """The memory figures of a built Keras `model` trained with `optimizer` (a Keras optimizer,
    built here on the model's weights: its slot variables are counted, not assumed)."""
    optimizer.build(model.trainable_variables)
    slots = [v for v in optimizer.variables if len(v.shape) > 0]  # not the step counter, the rate
    kept = sum(_sample_bytes(t) for layer in model.layers for t in keras.tree.flatten(layer.output))
    in_flight = max((_gradients_in_flight(layer) for layer in model.layers), default=0)
    return MemoryModel(
        parameters=_bytes(model.weights),
        gradients=_bytes(model.trainable_weights),
        optimizer_state=_bytes(slots),
        optimizer=optimizer_name,
        activation_bytes_per_sample=kept + in_flight,
    )


def _gradients_in_flight(layer: Any) -> int:
    """Bytes a sample's backward pass through `layer` holds beside the kept activations: the
    gradient of its output and the gradient of its input, alive together."""
    try:
        inputs = keras.tree.flatten(layer.input)
    except (AttributeError, ValueError):  # an input layer has no input
        inputs = []
    return sum(_sample_bytes(t) for t in (*inputs, *keras.tree.flatten(layer.output)))


def _sample_bytes(tensor: Any) -> int:
    return (
        int(np.prod([int(d) for d in tensor.shape[1:]], dtype=np.int64))
        * np.dtype(str(tensor.dtype)).itemsize
    )
