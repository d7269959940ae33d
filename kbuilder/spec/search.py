"""The spec's `search` section: what `kbuilder tune` varies, what it optimizes, and how.

Pure Pydantic (no Optuna, no Keras). Keys of `space` and `fixed` are spec paths as `--set`
writes them (`train.optimizer.learning_rate`, `params.width`, `layers[2].dense.units`); a
number between dots indexes a list too (`layers.2.dense.units`). Example:

    search:
      metric: val_accuracy
      trials: 12
      sampler: tpe
      pruner: median
      fixed: {train.data.validation: {type: split, fraction: 0.1}}
      space:
        train.optimizer.learning_rate: {float: [0.001, 0.3], log: true}
        layers.1.dense.units: {int: [64, 512], step: 64}

`check_search` then checks the section against the rest of the spec with located errors
in kbuilder/spec/search_check.py (a path that is not in the spec names the nearest one).
"""

import math
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Discriminator, Field, Tag, field_validator, model_validator

from kbuilder.spec.base import StrictModel

Scalar = bool | int | float | str | None
# The most points a grid may have: Optuna's grid sampler holds every point as a Python tuple,
# and no study runs more trials than `trials` allows. Sizes are computed, never enumerated.
GRID_LIMIT = 100_000
SamplerName = Literal["grid", "random", "tpe", "coarse_to_fine"]
PrunerName = Literal["none", "median", "successive_halving"]
PathKey = Annotated[
    str, Field(min_length=1, max_length=300, description="A dotted spec path, as `--set` takes.")
]


class FloatRange(StrictModel):
    """A real number between two bounds, uniform or on a log scale, optionally in steps."""

    # `float`/`int` are Python names, so the fields carry them as aliases (also when written out).
    model_config = ConfigDict(**StrictModel.model_config, serialize_by_alias=True)

    float_: list[float] = Field(
        alias="float", min_length=2, max_length=2, description="[low, high], low < high."
    )
    log: bool = Field(False, description="Sample the logarithm uniformly (learning rates, weight decay).")
    step: float | None = Field(None, gt=0, description="Only low, low+step, ...; needed by the grid sampler.")

    @model_validator(mode="after")
    def _bounds(self):
        low, high = self.float_
        if not low < high:
            raise ValueError(f"float: [low, high] needs low < high, got [{low}, {high}]")
        if self.log and low <= 0:
            raise ValueError("a log scale needs low > 0")
        if self.log and self.step is not None:
            raise ValueError("give log or step, not both")
        return self

    def bounds(self) -> tuple[float, float]:
        return float(self.float_[0]), float(self.float_[1])


class IntRange(StrictModel):
    """An integer between two bounds (inclusive), in steps or on a log scale."""

    model_config = ConfigDict(**StrictModel.model_config, serialize_by_alias=True)

    int_: list[int] = Field(
        alias="int", min_length=2, max_length=2, description="[low, high], low < high, both included."
    )
    step: int = Field(1, ge=1, le=1 << 30, description="Only low, low+step, ... up to high.")
    log: bool = Field(False, description="Sample the logarithm uniformly (needs low >= 1 and step 1).")

    @model_validator(mode="after")
    def _bounds(self):
        low, high = self.int_
        if not low < high:
            raise ValueError(f"int: [low, high] needs low < high, got [{low}, {high}]")
        if self.log and (low < 1 or self.step != 1):
            raise ValueError("a log scale needs low >= 1 and step 1")
        return self

    def bounds(self) -> tuple[int, int]:
        return int(self.int_[0]), int(self.int_[1])


class Choice(StrictModel):
    """One of a list of values (activations, optimizers, flags)."""

    choice: list[Scalar] = Field(
        min_length=1, max_length=200, description="The values to try (strings, numbers, booleans)."
    )

    @field_validator("choice")
    @classmethod
    def _distinct(cls, value):
        if len({repr(v) for v in value}) != len(value):
            raise ValueError("each choice once")
        return value


def _param_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        for key in ("float", "int", "choice"):
            if key in value:
                return key
        return None
    return getattr(value, "kind", None)


Param = Annotated[
    Annotated[FloatRange, Tag("float")] | Annotated[IntRange, Tag("int")] | Annotated[Choice, Tag("choice")],
    Discriminator(
        _param_kind,
        custom_error_type="search_param",
        custom_error_message="expected {float: [low, high]}, {int: [low, high]} or {choice: [...]}",
    ),
]
FloatRange.kind = "float"  # type: ignore[attr-defined]
IntRange.kind = "int"  # type: ignore[attr-defined]
Choice.kind = "choice"  # type: ignore[attr-defined]


class SearchSpec(StrictModel):
    """Hyperparameter search for `kbuilder tune`: the space, the metric, the trials and the method."""

    space: dict[PathKey, Param] = Field(
        min_length=1, max_length=64, description="Spec path -> the values to search."
    )
    metric: str = Field(
        "val_accuracy",
        pattern=r"^(val_|train_|test_)[A-Za-z0-9_]+$",
        max_length=100,
        description="What to optimize: a figure of the run's metrics.json (val_*, train_* or test_*).",
    )
    direction: Literal["maximize", "minimize"] | None = Field(
        None, description="Default: minimize a *loss*, maximize anything else."
    )
    trials: int | None = Field(
        None, ge=1, le=100000, description="Trials to finish; default: the grid's size, else 20."
    )
    sampler: SamplerName = Field("tpe", description="grid, random, tpe (Optuna's default) or coarse_to_fine.")
    rounds: int = Field(3, ge=2, le=100, description="coarse_to_fine: rounds, each over narrower intervals.")
    pruner: PrunerName = Field(
        "none", description="Stop poor trials early on the per-epoch metric: median or successive_halving."
    )
    seed: int | None = Field(0, ge=0, le=2**31 - 1, description="Seed of the sampler; null: random.")
    fixed: dict[PathKey, Any] = Field(
        default_factory=dict, max_length=64, description="Spec path -> a value every trial uses."
    )
    baseline: bool = Field(
        True,
        description="Trial 0 trains the spec's own values (when the space holds them): the figure to beat. Not with grid.",
    )

    def goal(self) -> str:
        if self.direction is not None:
            return self.direction
        return "minimize" if self.metric.endswith("loss") else "maximize"

    def epoch_metric(self) -> str | None:
        """The Keras per-epoch log key of the metric (None for test_* figures)."""
        if self.metric.startswith("val_"):
            return self.metric
        if self.metric.startswith("train_"):
            return self.metric[len("train_") :]
        return None

    def grid_size(self) -> int | None:
        """Points of the full grid (computed, not enumerated), or None when a parameter is continuous."""
        total = 1
        for param in self.space.values():
            count = grid_count(param)
            if count is None:
                return None
            total *= count
        return total

    def trial_count(self) -> int:
        if self.trials is not None:
            return self.trials
        return (self.grid_size() or 20) if self.sampler == "grid" else 20


def grid_count(param) -> int | None:
    """How many values a discrete parameter has (arithmetic only), or None for a continuous one."""
    if isinstance(param, Choice):
        return len(param.choice)
    if isinstance(param, IntRange):
        low, high = param.bounds()
        return (high - low) // (1 if param.log else param.step) + 1
    if param.step is None:
        return None
    low, high = param.bounds()
    steps = (high - low) / param.step + 1e-9
    # A tiny step makes the quotient overflow to inf: say "more than anyone can try" instead.
    return int(steps) + 1 if math.isfinite(steps) and steps < 1e18 else 10**18


def grid_values(param) -> list | None:
    """Every value of a discrete parameter, or None for a continuous one. Refuses (ValueError)
    a parameter of more than GRID_LIMIT values before building any of them."""
    count = grid_count(param)
    if count is None:
        return None
    if count > GRID_LIMIT:
        raise ValueError(f"{count:,} values; a grid takes at most {GRID_LIMIT:,} points")
    if isinstance(param, Choice):
        return list(param.choice)
    low, high = param.bounds()
    if isinstance(param, IntRange):
        return list(range(low, high + 1, 1 if param.log else param.step))
    return [round(low + i * param.step, 12) for i in range(count)]


def describe_count(count: int) -> str:
    """1234567 -> '1,234,567'; a number too long to read -> 'about 10^40'."""
    return f"{count:,}" if count < 10**15 else f"about 10^{len(str(count)) - 1}"


__all__ = [
    "GRID_LIMIT",
    "Choice",
    "FloatRange",
    "IntRange",
    "SearchSpec",
    "describe_count",
    "grid_count",
    "grid_values",
]
