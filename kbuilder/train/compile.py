"""Keras optimizer, learning-rate schedule, loss and metrics from the `train` section."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras

from kbuilder.spec.train import LossSpec
from kbuilder.train.schedules import warmup_schedule

_OPTIMIZER_CLASSES = {
    "sgd": "SGD",
    "adam": "Adam",
    "adamw": "AdamW",
    "rmsprop": "RMSprop",
    "adagrad": "Adagrad",
}
_METRICS = {
    "accuracy": "accuracy",
    "auc": "auc",
    "precision": "precision",
    "recall": "recall",
    "mean_absolute_error": "mean_absolute_error",
    "mean_squared_error": "mean_squared_error",
}
_CROSSENTROPY = ("sparse_categorical_crossentropy", "categorical_crossentropy", "binary_crossentropy")


def learning_rate(optimizer_spec, *, steps_per_epoch: int, epochs: int) -> Any:
    """A float, or a Keras schedule counted in optimizer steps (epochs x steps_per_epoch)."""
    base = optimizer_spec.learning_rate
    schedule = optimizer_spec.schedule
    if schedule is None:
        return base
    steps = lambda e: max(1, round(e * steps_per_epoch))
    warmup = round(schedule.warmup_epochs * steps_per_epoch)
    if schedule.type == "cosine":
        total = (
            steps(schedule.decay_epochs)
            if schedule.decay_epochs
            else max(1, epochs * steps_per_epoch - warmup)
        )
        if warmup:
            return keras.optimizers.schedules.CosineDecay(
                0.0, total, alpha=schedule.alpha, warmup_target=base, warmup_steps=warmup
            )
        return keras.optimizers.schedules.CosineDecay(base, total, alpha=schedule.alpha)
    if schedule.type == "step":
        decay = keras.optimizers.schedules.ExponentialDecay(
            base, steps(schedule.every_epochs), schedule.factor, staircase=True
        )
    elif schedule.type == "exponential":
        decay = keras.optimizers.schedules.ExponentialDecay(
            base, steps(schedule.decay_epochs), schedule.decay_rate, staircase=schedule.staircase
        )
    else:
        decay = keras.optimizers.schedules.PiecewiseConstantDecay(
            [steps(b) for b in schedule.boundaries], [base * f for f in schedule.factors]
        )
    return warmup_schedule(decay, warmup, base) if warmup else decay


def make_optimizer(optimizer_spec, *, steps_per_epoch: int, epochs: int) -> Any:
    kwargs = optimizer_spec.model_dump(exclude={"type", "schedule", "learning_rate"})
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    kwargs["learning_rate"] = learning_rate(optimizer_spec, steps_per_epoch=steps_per_epoch, epochs=epochs)
    return getattr(keras.optimizers, _OPTIMIZER_CLASSES[optimizer_spec.type])(**kwargs)


def output_is_logits(model: Any) -> bool:
    """True when the output layer applies no squashing activation (the notes' `fc3` returns logits)."""
    try:
        layer = model.outputs[0]._keras_history[0]
    except (AttributeError, IndexError, TypeError):
        layer = model.layers[-1]
    if type(layer).__name__ == "Softmax":
        return False
    activation = getattr(layer, "activation", None)
    if activation is None:
        return True  # Flatten, Add, ...: nothing squashes the values
    return getattr(activation, "__name__", "linear") == "linear"


def make_loss(loss_spec, model: Any) -> tuple[Any, bool]:
    """The loss object and whether it takes logits."""
    logits = output_is_logits(model) if loss_spec.from_logits == "auto" else bool(loss_spec.from_logits)
    name = loss_spec.name
    if name == "sparse_categorical_crossentropy":
        return keras.losses.SparseCategoricalCrossentropy(from_logits=logits), logits
    if name == "categorical_crossentropy":
        return keras.losses.CategoricalCrossentropy(
            from_logits=logits, label_smoothing=loss_spec.label_smoothing
        ), logits
    if name == "binary_crossentropy":
        return keras.losses.BinaryCrossentropy(
            from_logits=logits, label_smoothing=loss_spec.label_smoothing
        ), logits
    return keras.losses.get(name), False


def make_metrics(names: Sequence[str], loss_name: str, logits: bool) -> list[Any]:
    """Metric objects; accuracies are picked to match the loss's label format."""
    metrics: list[Any] = []
    for name in names:
        if name == "accuracy":
            if loss_name == "sparse_categorical_crossentropy":
                metrics.append(keras.metrics.SparseCategoricalAccuracy(name="accuracy"))
            elif loss_name in ("categorical_crossentropy", "kl_divergence"):
                metrics.append(keras.metrics.CategoricalAccuracy(name="accuracy"))
            elif loss_name in ("binary_crossentropy", "hinge"):
                threshold = 0.0 if logits else 0.5
                metrics.append(keras.metrics.BinaryAccuracy(name="accuracy", threshold=threshold))
            else:
                metrics.append("accuracy")
        elif name == "top5_accuracy":
            cls = (
                keras.metrics.SparseTopKCategoricalAccuracy
                if loss_name == "sparse_categorical_crossentropy"
                else keras.metrics.TopKCategoricalAccuracy
            )
            metrics.append(cls(k=5, name="top5_accuracy"))
        elif name == "auc":
            metrics.append(keras.metrics.AUC(name="auc", from_logits=logits))
        else:
            metrics.append(_METRICS[name])
    return metrics


def is_crossentropy(loss_name: str) -> bool:
    return loss_name in _CROSSENTROPY


def loss_section(train_spec) -> LossSpec:
    """The train section's loss as a LossSpec (the spec also takes a loss given by its name)."""
    loss = train_spec.loss
    return loss if isinstance(loss, LossSpec) else LossSpec.model_validate({"name": loss})


def outputs_logits(model: Any, loss_spec: LossSpec) -> bool:
    """Whether the model's outputs are logits under `loss_spec`: the rule make_loss applies
    (only cross-entropies take logits)."""
    if not is_crossentropy(loss_spec.name):
        return False
    return output_is_logits(model) if loss_spec.from_logits == "auto" else bool(loss_spec.from_logits)
