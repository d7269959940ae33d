"""Optimizers, learning-rate schedules, losses and metrics of the `train` section."""

from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter, model_validator

from kbuilder.spec.base import StrictModel

LearningRate = Annotated[float, Field(gt=0.0, le=100.0, description="Base (peak) learning rate.")]
Epochs = Annotated[float, Field(gt=0.0, le=1e6, description="A duration in epochs (fractions allowed).")]


class _Warmup(StrictModel):
    warmup_epochs: float = Field(
        0.0, ge=0.0, le=1e6, description="Linear warm-up from 0 to the base rate first."
    )


class StepSchedule(_Warmup):
    """Multiply the rate by `factor` every `every_epochs` (PyTorch's StepLR)."""

    type: Literal["step"] = Field(description="Step decay.")
    every_epochs: Epochs
    factor: float = Field(0.1, gt=0.0, lt=1.0, description="Multiplier applied at each step.")


class PiecewiseSchedule(_Warmup):
    """Rate = base * factors[i] between epoch boundaries."""

    type: Literal["piecewise"] = Field(description="Piecewise-constant rate.")
    boundaries: list[Epochs] = Field(
        min_length=1, max_length=100, description="Epochs where the rate changes, increasing."
    )
    factors: list[Annotated[float, Field(gt=0.0, le=1e3)]] = Field(
        min_length=2, max_length=101, description="Multipliers of the base rate, one more than boundaries."
    )

    @model_validator(mode="after")
    def _consistent(self):
        if len(self.factors) != len(self.boundaries) + 1:
            raise ValueError(f"give {len(self.boundaries) + 1} factors for {len(self.boundaries)} boundaries")
        if any(later <= earlier for earlier, later in zip(self.boundaries, self.boundaries[1:])):
            raise ValueError("boundaries must increase")
        return self


class ExponentialSchedule(_Warmup):
    """Rate = base * decay_rate ** (epoch / decay_epochs)."""

    type: Literal["exponential"] = Field(description="Exponential decay.")
    decay_rate: float = Field(gt=0.0, lt=1.0, description="Multiplier per decay_epochs.")
    decay_epochs: Epochs = 1.0
    staircase: bool = Field(False, description="Decay in whole steps instead of continuously.")


class CosineSchedule(_Warmup):
    """Cosine decay from the base rate to alpha * base over decay_epochs (default: the whole run)."""

    type: Literal["cosine"] = Field(description="Cosine decay.")
    decay_epochs: Epochs | None = Field(
        None, description="Length of the decay after warm-up; default: the rest of training."
    )
    alpha: float = Field(0.0, ge=0.0, lt=1.0, description="Final rate as a fraction of the base rate.")


Schedule = Annotated[
    StepSchedule | PiecewiseSchedule | ExponentialSchedule | CosineSchedule,
    Field(
        discriminator="type",
        description="Learning-rate schedule (`type`: step, piecewise, exponential, cosine).",
    ),
]


class _Optimizer(StrictModel):
    schedule: Schedule | None = Field(None, description="How the learning rate changes during training.")
    weight_decay: float | None = Field(None, ge=0.0, le=1.0, description="Decoupled weight decay.")
    clipnorm: float | None = Field(None, gt=0.0, description="Clip each gradient to this norm.")
    global_clipnorm: float | None = Field(
        None, gt=0.0, description="Clip all gradients together to this norm."
    )
    clipvalue: float | None = Field(None, gt=0.0, description="Clip gradient values to +-clipvalue.")


class SGD(_Optimizer):
    """Stochastic gradient descent, optionally with (Nesterov) momentum."""

    type: Literal["sgd"] = Field(description="keras.optimizers.SGD.")
    learning_rate: LearningRate = 0.01
    momentum: float = Field(0.0, ge=0.0, lt=1.0, description="Momentum factor.")
    nesterov: bool = Field(False, description="Nesterov momentum.")


class Adam(_Optimizer):
    """Adam: momentum and RMSprop combined."""

    type: Literal["adam"] = Field(description="keras.optimizers.Adam.")
    learning_rate: LearningRate = 0.001
    beta_1: float = Field(0.9, ge=0.0, lt=1.0, description="Decay of the first moment.")
    beta_2: float = Field(0.999, ge=0.0, lt=1.0, description="Decay of the second moment.")
    epsilon: float = Field(1e-7, gt=0.0, le=1.0, description="Numerical stability term.")
    amsgrad: bool = Field(False, description="Use the AMSGrad variant.")


class AdamW(Adam):
    """Adam with decoupled weight decay."""

    type: Literal["adamw"] = Field(description="keras.optimizers.AdamW.")  # type: ignore[assignment]
    weight_decay: float | None = Field(0.004, ge=0.0, le=1.0, description="Decoupled weight decay.")


class RMSprop(_Optimizer):
    """RMSprop: scale steps by a moving average of squared gradients."""

    type: Literal["rmsprop"] = Field(description="keras.optimizers.RMSprop.")
    learning_rate: LearningRate = 0.001
    rho: float = Field(0.9, ge=0.0, lt=1.0, description="Decay of the squared-gradient average.")
    momentum: float = Field(0.0, ge=0.0, lt=1.0, description="Momentum factor.")
    epsilon: float = Field(1e-7, gt=0.0, le=1.0, description="Numerical stability term.")
    centered: bool = Field(False, description="Normalize by the gradient variance estimate.")


class Adagrad(_Optimizer):
    """Adagrad: per-parameter rates from accumulated squared gradients."""

    type: Literal["adagrad"] = Field(description="keras.optimizers.Adagrad.")
    learning_rate: LearningRate = 0.001
    initial_accumulator_value: float = Field(0.1, ge=0.0, le=1e3, description="Starting accumulator value.")
    epsilon: float = Field(1e-7, gt=0.0, le=1.0, description="Numerical stability term.")


Optimizer = Annotated[
    SGD | Adam | AdamW | RMSprop | Adagrad,
    Field(
        discriminator="type",
        description="Optimizer (`type`: sgd, adam, adamw, rmsprop, adagrad), or just its name.",
    ),
]

OptimizerName = Literal["sgd", "adam", "adamw", "rmsprop", "adagrad"]

LossName = Literal[
    "sparse_categorical_crossentropy",
    "categorical_crossentropy",
    "binary_crossentropy",
    "mean_squared_error",
    "mean_absolute_error",
    "huber",
    "hinge",
    "kl_divergence",
]


class LossSpec(StrictModel):
    """The loss; integer labels are one-hot encoded automatically for categorical_crossentropy."""

    name: LossName = Field("sparse_categorical_crossentropy", description="Keras loss name.")
    from_logits: bool | Literal["auto"] = Field(
        "auto",
        description="Whether the model outputs logits; auto: true when the output layer has no activation.",
    )
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0, description="Label smoothing (cross-entropy losses).")


MetricName = Literal[
    "accuracy",
    "top5_accuracy",
    "auc",
    "precision",
    "recall",
    "mean_absolute_error",
    "mean_squared_error",
]


def name_to_mapping(value: Any, key: str) -> Any:
    """Let `optimizer: adam` stand for `optimizer: {type: adam}` (and likewise for the loss)."""
    return {key: value} if isinstance(value, str) else value


def optimizer_by_name(value: Any) -> Any:
    """A bare name (`optimizer: adam`) is the optimizer with its defaults (a field validator's
    body, shared by `train.optimizer` and a phase's `optimizer`)."""
    if isinstance(value, str):
        return TypeAdapter(Optimizer).validate_python(name_to_mapping(value, "type"))
    return value
