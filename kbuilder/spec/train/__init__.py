"""The spec's `train` section: data, optimizer, loss, epochs, callbacks, performance, scale-out.

Pure Pydantic (no TensorFlow or Keras), so validation is instant. Example:

    train:
      data:
        source: {type: keras, name: mnist}
        preprocess: [{type: rescale, scale: 0.00784313725490196, offset: -1.0}]
      optimizer: {type: sgd, learning_rate: 0.01, momentum: 0.9}
      loss: sparse_categorical_crossentropy
      epochs: 10
      batch_size: 64
"""

from typing import Literal

from pydantic import Field, field_validator, model_validator

from kbuilder.spec.train.augment import Augment
from kbuilder.spec.train.callbacks import DEFAULT_CALLBACKS, Callback
from kbuilder.spec.train.data import DataSource, DataSpec, Preprocess, Validation
from kbuilder.spec.train.finetune import FineTuning, Phase
from kbuilder.spec.train.optim import (
    SGD,
    LossName,
    LossSpec,
    MetricName,
    Optimizer,
    OptimizerName,
    Schedule,
    name_to_mapping,
    optimizer_by_name,
)
from kbuilder.spec.train.run import DistributeSpec, PerformanceSpec

BackendName = Literal["tensorflow", "jax", "torch"]


class TrainSpec(FineTuning):
    """How `kbuilder train` trains the model: data, optimizer, loss, epochs, callbacks (and,
    from FineTuning, frozen layers and phases)."""

    data: DataSpec = Field(description="Training, validation and test data.")
    optimizer: Optimizer | OptimizerName = Field(
        default_factory=lambda: SGD(type="sgd"),
        description="The optimizer, e.g. {type: adam, learning_rate: 0.001}, or just `adam`.",
    )
    loss: LossSpec | LossName = Field(
        default_factory=LossSpec, description="The loss, by name or as {name, from_logits, label_smoothing}."
    )
    metrics: list[MetricName] = Field(
        ["accuracy"], max_length=16, description="Figures logged besides the loss."
    )
    epochs: int = Field(10, ge=1, le=100000, description="Passes over the training data.")
    batch_size: int = Field(
        32, ge=1, le=1 << 20, description="Samples per optimizer step (global, over all devices)."
    )
    seed: int | None = Field(
        0,
        ge=0,
        le=2**31 - 1,
        description="Seed for weights, shuffling, dropout and augmentation; null: random.",
    )
    callbacks: list[Callback] = Field(
        default_factory=list,
        max_length=32,
        description=f"Callbacks; {', '.join(DEFAULT_CALLBACKS)} run by default.",
    )
    backend: BackendName | None = Field(
        None, description="Keras backend; default: --backend, then KERAS_BACKEND, then tensorflow."
    )
    performance: PerformanceSpec = Field(
        default_factory=PerformanceSpec, description="Speed settings (defaults measured)."
    )
    distribute: DistributeSpec = Field(
        default_factory=DistributeSpec, description="Several devices or processes."
    )

    @field_validator("optimizer", mode="after")
    @classmethod
    def _optimizer_by_name(cls, value):
        return optimizer_by_name(value)

    @field_validator("loss", mode="after")
    @classmethod
    def _loss_by_name(cls, value):
        return LossSpec(**name_to_mapping(value, "name")) if isinstance(value, str) else value

    @field_validator("metrics")
    @classmethod
    def _unique_metrics(cls, value):
        if len(set(value)) != len(value):
            raise ValueError("each metric once")
        return value

    @field_validator("callbacks")
    @classmethod
    def _unique_callbacks(cls, value):
        seen: set[str] = set()
        for callback in value:
            if callback.type in seen:
                raise ValueError(f"callback '{callback.type}' is listed twice")
            seen.add(callback.type)
        return value

    @model_validator(mode="after")
    def _compatible(self):
        kinds = {c.type for c in self.callbacks if c.enabled}
        if "reduce_lr_on_plateau" in kinds and self.optimizer.schedule is not None:
            raise ValueError("reduce_lr_on_plateau cannot change a scheduled learning rate; drop one of them")
        if self.distribute.multi_process and self.backend not in (None, "jax"):
            raise ValueError("multi-process training runs on the JAX backend (set backend: jax)")
        epochs = self.settle_epochs(self.epochs, "epochs" in self.model_fields_set)
        if epochs != self.epochs:
            self.epochs = epochs
        return self

    def callback(self, kind: str):
        """The listed callback of that type, or None."""
        return next((c for c in self.callbacks if c.type == kind), None)


__all__ = [
    "Augment",
    "Callback",
    "DataSource",
    "DataSpec",
    "DistributeSpec",
    "LossSpec",
    "Optimizer",
    "PerformanceSpec",
    "Phase",
    "Preprocess",
    "Schedule",
    "TrainSpec",
    "Validation",
]
