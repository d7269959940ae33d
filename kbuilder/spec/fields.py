"""Field types shared by the layer specs: Keras argument names, with constraints.

Every integer a spec gives has an upper bound as well as a lower one: a spec is untrusted
input, and `units: 10**100` must be refused here, with its location, rather than deep
inside TensorFlow. The bounds are far above any real model's (docs/spec-language.md, "Untrusted specs
and limits"); the total size of a model is bounded separately when it is built
(`--max-params`).
"""

from typing import Annotated, Literal

from pydantic import Field, model_validator

from kbuilder.spec.base import StrictModel

MAX_WIDTH = 10_000_000  # units, filters, channels, vocabulary size
MAX_DIMENSION = 1_000_000  # one dimension of an input or target shape
MAX_WINDOW = 10_000  # kernel, pool, stride, dilation, padding, upsampling factor
MAX_SEED = 2**31 - 1  # what every backend's random generators accept

Width = Annotated[int, Field(gt=0, le=MAX_WIDTH, description="A positive count (units, channels).")]
Dimension = Annotated[int, Field(gt=0, le=MAX_DIMENSION, description="A size along one axis.")]
Window = Annotated[int, Field(gt=0, le=MAX_WINDOW, description="A window length, step or rate.")]
PadAmount = Annotated[int, Field(ge=0, le=MAX_WINDOW, description="Zeros added at one end.")]

ActivationName = Literal[
    "linear",
    "relu",
    "relu6",
    "sigmoid",
    "hard_sigmoid",
    "hard_swish",
    "hard_silu",
    "tanh",
    "softmax",
    "log_softmax",
    "elu",
    "selu",
    "gelu",
    "swish",
    "silu",
    "mish",
    "softplus",
    "softsign",
    "exponential",
    "leaky_relu",
]

InitializerName = Literal[
    "glorot_uniform",
    "glorot_normal",
    "he_normal",
    "he_uniform",
    "lecun_normal",
    "lecun_uniform",
    "zeros",
    "ones",
    "constant",
    "orthogonal",
    "identity",
    "random_normal",
    "random_uniform",
    "truncated_normal",
    "variance_scaling",
]

# The arguments each initializer takes (Keras's constructor arguments): a mapping naming an
# argument its initializer lacks is refused here, located, rather than failing in Keras.
# tests/test_initializers.py checks this table against InitializerName and Keras's classes.
INITIALIZER_ARGUMENTS: dict[str, tuple[str, ...]] = {
    "glorot_uniform": ("seed",),
    "glorot_normal": ("seed",),
    "he_normal": ("seed",),
    "he_uniform": ("seed",),
    "lecun_normal": ("seed",),
    "lecun_uniform": ("seed",),
    "zeros": (),
    "ones": (),
    "constant": ("value",),
    "orthogonal": ("gain", "seed"),
    "identity": ("gain",),
    "random_normal": ("mean", "stddev", "seed"),
    "random_uniform": ("minval", "maxval", "seed"),
    "truncated_normal": ("mean", "stddev", "seed"),
    "variance_scaling": ("scale", "mode", "distribution", "seed"),
}


class InitializerSpec(StrictModel):
    """A Keras initializer with arguments, e.g. `{name: random_normal, stddev: 0.01}`."""

    name: InitializerName = Field(description="Keras initializer name (snake_case).")
    mean: float | None = Field(None, description="Mean of a normal initializer.")
    stddev: float | None = Field(None, gt=0, description="Standard deviation of a normal initializer.")
    minval: float | None = Field(None, description="Lower bound of random_uniform.")
    maxval: float | None = Field(None, description="Upper bound of random_uniform.")
    value: float | None = Field(None, description="The value of a constant initializer.")
    scale: float | None = Field(None, gt=0, description="Scale of variance_scaling.")
    gain: float | None = Field(None, gt=0, description="Gain of orthogonal/identity.")
    mode: Literal["fan_in", "fan_out", "fan_avg"] | None = Field(None, description="variance_scaling mode.")
    distribution: Literal["truncated_normal", "untruncated_normal", "uniform"] | None = Field(
        None, description="variance_scaling distribution."
    )
    seed: int | None = Field(None, ge=0, le=MAX_SEED, description="Seed for reproducible initial weights.")

    @model_validator(mode="after")
    def _arguments_of_its_name(self):
        takes = INITIALIZER_ARGUMENTS[self.name]
        given = [key for key in self.model_fields_set if key != "name" and getattr(self, key) is not None]
        extra = sorted(set(given) - set(takes))
        if extra:
            accepted = ", ".join(takes) if takes else "no arguments"
            raise ValueError(f"{self.name} does not take {', '.join(extra)}; it takes {accepted}")
        if self.minval is not None and self.maxval is not None and self.minval >= self.maxval:
            raise ValueError(f"minval ({self.minval}) must be below maxval ({self.maxval})")
        return self

    def arguments(self) -> dict[str, object]:
        """The Keras constructor arguments given (the defaults are Keras's)."""
        return self.model_dump(exclude_none=True, exclude={"name"})


Initializer = Annotated[
    InitializerName | InitializerSpec,
    Field(
        description="An initializer: a Keras name like `he_normal`, or a mapping with `name` and arguments."
    ),
]


class RegularizerSpec(StrictModel):
    """Weight penalty: `{l2: 0.0005}`, `{l1: 0.01}` or both (l1_l2)."""

    l1: float | None = Field(None, ge=0, description="L1 penalty factor (sum of absolute weights).")
    l2: float | None = Field(None, ge=0, description="L2 penalty factor (sum of squared weights).")

    @model_validator(mode="after")
    def _needs_one(self):
        if self.l1 is None and self.l2 is None:
            raise ValueError("give l1, l2 or both, e.g. {l2: 0.0005}")
        return self


class ConstraintSpec(StrictModel):
    """A weight constraint applied after each update: `{max_norm: 3}`, `{non_neg: true}`..."""

    max_norm: float | None = Field(
        None, gt=0, description="Rescale weights whose norm exceeds this (Kim 2014: 3)."
    )
    axis: int = Field(
        0, description="Axis along which max_norm/unit_norm norms are computed (Keras default 0)."
    )
    non_neg: bool = Field(False, description="Clip weights to be non-negative.")
    unit_norm: bool = Field(False, description="Rescale weights to unit norm.")

    @model_validator(mode="after")
    def _needs_one(self):
        chosen = [self.max_norm is not None, self.non_neg, self.unit_norm]
        if sum(chosen) != 1:
            raise ValueError("give exactly one of max_norm, non_neg: true or unit_norm: true")
        return self


Constraint = Annotated[
    ConstraintSpec,
    Field(description="A weight constraint: {max_norm: 3}, {non_neg: true} or {unit_norm: true}."),
]

Regularizer = Annotated[
    RegularizerSpec, Field(description="A weight regularizer: {l1: x}, {l2: x} or {l1: x, l2: y}.")
]

Size1D = Window
Size2D = Window | Annotated[list[Window], Field(min_length=2, max_length=2)]

KernelSize2D = Annotated[Size2D, Field(description="Window height and width: one integer or [h, w].")]
Strides2D = Annotated[Size2D, Field(description="Step of the window: one integer or [h, w].")]
Dilation2D = Annotated[Size2D, Field(description="Dilation rate: one integer or [h, w].")]
Padding = Annotated[
    Literal["valid", "same"],
    Field(description="'valid' (no padding) or 'same' (output size = ceil(input/stride))."),
]
Padding1D = Annotated[Literal["valid", "same", "causal"], Field(description="'valid', 'same' or 'causal'.")]
Units = Annotated[int, Field(gt=0, le=MAX_WIDTH, description="Number of output units.")]
Filters = Annotated[int, Field(gt=0, le=MAX_WIDTH, description="Number of output channels (filters).")]
UseBias = Annotated[bool, Field(description="Whether the layer adds a bias vector.")]
OptionalActivation = Annotated[
    ActivationName | None,
    Field(description="Activation applied to the output (Keras name); none means linear."),
]
Axis = Annotated[int, Field(ge=-8, le=8, description="The axis to operate on (-1 is channels-last).")]
DropoutRate = Annotated[float, Field(ge=0.0, lt=1.0, description="Fraction of units to drop while training.")]
Seed = Annotated[int | None, Field(ge=0, le=MAX_SEED, description="Random seed (none: nondeterministic).")]
Shape = Annotated[
    list[Dimension | None],
    Field(
        min_length=1, max_length=8, description="Shape without the batch dimension; null for a variable size."
    ),
]
