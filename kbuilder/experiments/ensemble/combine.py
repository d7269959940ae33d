"""The ensemble's arithmetic on numpy arrays: probabilities, averaging, voting, accuracy and loss.

Kept free of Keras so the math is tested on fixed numbers. A "probability" array is [N, C] for
softmax classifiers (sparse or categorical cross-entropy) and [N, 1] (or [N]) for a sigmoid
unit (binary cross-entropy), where the value is P(class 1).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from kbuilder.errors import UsageError, did_you_mean

LossName = Literal["sparse_categorical_crossentropy", "categorical_crossentropy", "binary_crossentropy"]
LOSSES: tuple[str, ...] = (
    "sparse_categorical_crossentropy",
    "categorical_crossentropy",
    "binary_crossentropy",
)
COMBINE_METHODS = ("average", "vote")
EPSILON = 1e-7  # Keras clips probabilities to [eps, 1 - eps] in its cross-entropies; so do we


def to_probabilities(outputs: np.ndarray, *, loss: str, logits: bool) -> np.ndarray:
    """A member's raw outputs as probabilities: softmax (sigmoid for binary) when they are logits."""
    outputs = np.asarray(outputs, dtype="float64")
    if not logits:
        return outputs
    if loss == "binary_crossentropy":
        return 1.0 / (1.0 + np.exp(-outputs))
    shifted = outputs - outputs.max(axis=-1, keepdims=True)  # no overflow for large logits
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def predicted_classes(probabilities: np.ndarray, *, loss: str) -> np.ndarray:
    """Class ids [N]: argmax over classes, or P(1) > 0.5 for a sigmoid unit."""
    if loss == "binary_crossentropy":
        return (probabilities.reshape(len(probabilities), -1)[:, 0] > 0.5).astype("int64")
    return np.argmax(probabilities, axis=-1)


def class_count(probabilities: np.ndarray, *, loss: str) -> int:
    return 2 if loss == "binary_crossentropy" else int(probabilities.shape[-1])


def average(member_probabilities: list[np.ndarray]) -> np.ndarray:
    """The mean of the members' probabilities (the default combination)."""
    return np.mean(np.stack(member_probabilities), axis=0)


def vote(member_probabilities: list[np.ndarray], *, loss: str) -> tuple[np.ndarray, np.ndarray]:
    """Majority vote: (winning class per sample [N], vote shares [N, C]).

    Ties go to the tied class with the highest averaged probability, so a vote never depends on
    the order the members were listed in.
    """
    classes = class_count(member_probabilities[0], loss=loss)
    votes = np.stack([predicted_classes(p, loss=loss) for p in member_probabilities])  # [M, N]
    counts = np.stack([(votes == c).sum(axis=0) for c in range(classes)], axis=-1)  # [N, C]
    mean = average(member_probabilities)
    mean_by_class = (
        np.concatenate([1.0 - mean.reshape(len(mean), -1), mean.reshape(len(mean), -1)], axis=-1)
        if loss == "binary_crossentropy"
        else mean
    )
    leaders = counts == counts.max(axis=-1, keepdims=True)
    winners = np.argmax(np.where(leaders, mean_by_class, -np.inf), axis=-1)
    return winners, counts / len(member_probabilities)


def true_classes(labels: np.ndarray, *, loss: str) -> np.ndarray:
    """Class ids [N] from sparse ids, one-hot rows or 0/1 labels."""
    labels = np.asarray(labels)
    if loss == "categorical_crossentropy":
        return np.argmax(labels, axis=-1)
    return (
        labels.reshape(len(labels), -1)[:, 0].astype("int64")
        if loss == "binary_crossentropy"
        else labels.reshape(len(labels)).astype("int64")
    )


def accuracy(classes: np.ndarray, labels: np.ndarray, *, loss: str) -> float:
    return float(np.mean(classes == true_classes(labels, loss=loss)))


def crossentropy(probabilities: np.ndarray, labels: np.ndarray, *, loss: str) -> float:
    """The mean cross-entropy of probabilities against the labels (as Keras computes it)."""
    p = np.clip(np.asarray(probabilities, dtype="float64"), EPSILON, 1.0 - EPSILON)
    if loss == "binary_crossentropy":
        y = np.asarray(labels, dtype="float64").reshape(p.shape)
        return float(np.mean(-(y * np.log(p) + (1.0 - y) * np.log(1.0 - p))))
    if loss == "categorical_crossentropy":
        p = p / np.sum(p, axis=-1, keepdims=True)  # Keras renormalizes probabilities too
        return float(np.mean(-np.sum(np.asarray(labels, dtype="float64") * np.log(p), axis=-1)))
    picked = p[np.arange(len(p)), true_classes(labels, loss=loss)]
    return float(np.mean(-np.log(picked)))


def vote_probabilities(shares: np.ndarray, *, loss: str) -> np.ndarray:
    """Vote shares in the members' probability layout ([N, 1] P(1) for a sigmoid unit)."""
    return shares[:, 1:2] if loss == "binary_crossentropy" else shares


def check_method(method: str) -> str:
    if method not in COMBINE_METHODS:
        raise UsageError(
            f"unknown combination '{method}'{did_you_mean(method, COMBINE_METHODS)}; "
            f"choose {' or '.join(COMBINE_METHODS)}"
        )
    return method
