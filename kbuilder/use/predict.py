"""Predicting with a trained model from raw inputs: group the samples by shape, preprocess
each group exactly as training did, run the model in batches, turn outputs into
probabilities, and keep the top k classes of each input with their names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from kbuilder.errors import InputError
from kbuilder.use.inputs import Inputs
from kbuilder.use.source import TrainedModel

DEFAULT_BATCH = 256


@dataclass
class Predictions:
    """Probabilities [N, classes] for each named input, and the class names (or None)."""

    names: list[str]
    probabilities: np.ndarray
    class_names: list[str] | None

    def top(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(class ids [N, k], probabilities [N, k]), most probable first (ties: lower id first)."""
        k = max(1, min(k, self.probabilities.shape[-1]))
        order = np.argsort(-self.probabilities, axis=-1, kind="stable")[:, :k]
        return order, np.take_along_axis(self.probabilities, order, axis=-1)

    def rows(self, k: int) -> list[dict[str, Any]]:
        """One dict per input: its name and the top-k classes (id, name, probability)."""
        ids, probabilities = self.top(k)
        names = self.class_names
        return [
            {
                "input": name,
                "top": [
                    {
                        "class_id": int(c),
                        "class_name": names[int(c)] if names else None,
                        "probability": float(p),
                    }
                    for c, p in zip(class_ids, probs)
                ],
            }
            for name, class_ids, probs in zip(self.names, ids, probabilities)
        ]


def predict_samples(trained: TrainedModel, inputs: Inputs, *, batch_size: int = DEFAULT_BATCH) -> Predictions:
    """Probabilities of every input (raw samples as the data source delivers them)."""
    if batch_size < 1:
        raise InputError(f"--batch-size must be at least 1, got {batch_size}")
    if not inputs.samples:
        raise InputError("no inputs to predict")
    groups: dict[tuple, list[int]] = {}
    for index, sample in enumerate(inputs.samples):
        groups.setdefault(tuple(sample.shape), []).append(index)
    probabilities: np.ndarray | None = None
    for indices in groups.values():
        raw = np.stack([inputs.samples[i] for i in indices])
        x = trained.preprocess(raw)
        if not trained.accepts(x):
            raise InputError(
                f"{inputs.names[indices[0]]}: preprocessed to shape {list(x.shape[1:])}, but the model takes "
                f"{list(trained.model.inputs[0].shape[1:])}"
            )
        outputs = trained.model.predict(x, batch_size=batch_size, verbose=0)
        p = trained.class_probabilities(outputs)
        if probabilities is None:
            probabilities = np.zeros((len(inputs.samples), p.shape[-1]), dtype="float64")
        probabilities[indices] = p
    assert probabilities is not None  # inputs.samples is not empty
    names = trained.class_names
    if names is not None and len(names) != probabilities.shape[-1]:
        names = None
    return Predictions(list(inputs.names), probabilities, names)
