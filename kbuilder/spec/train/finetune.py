"""Fine-tuning fields of `train`: layers frozen by pattern, and training in phases.

Keras's transfer-learning guide in spec form: a first phase trains a new head on top of
frozen layers, a second unfreezes some or all of them and goes on with a lower learning
rate (the model is compiled again at every phase, as the guide prescribes):

    train:
      freeze: [c1, c3]                 # frozen from the first epoch
      phases:
        - {name: head, epochs: 3}
        - {name: all, epochs: 5, unfreeze: all, learning_rate: 0.0001}

A pattern is a layer name or an fnmatch glob (`*`, `?`, `[...]`) over the names `build`
gives layers; a composite's name covers every layer inside it (`stage1` freezes
`stage1-conv2d_0`, ...). Which names exist is known only once the spec is expanded: the
train stage checks every pattern against them (kbuilder/train/freeze.py).
"""

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from kbuilder.spec.base import StrictModel
from kbuilder.spec.train.optim import Optimizer, OptimizerName, optimizer_by_name

LayerPattern = Annotated[
    str,
    Field(
        min_length=1,
        max_length=300,
        pattern=r"^[A-Za-z0-9_*?\[\]!-]+$",
        description="A layer name or glob (*, ?, [...]); a composite's name covers the layers inside it.",
    ),
]
Patterns = Annotated[list[LayerPattern], Field(max_length=256)]
PhaseName = Annotated[
    str,
    Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_-]*$", max_length=64, description="A phase's name."),
]


def _distinct(patterns: list[str], field: str) -> list[str]:
    repeated = sorted({p for p in patterns if patterns.count(p) > 1})
    if repeated:
        raise ValueError(f"{field} lists {', '.join(repeated)} more than once")
    return patterns


class Phase(StrictModel):
    """One stretch of training with its own frozen layers, optimizer and epochs."""

    name: PhaseName | None = Field(
        None, description="Shown in the history, curves and metrics.json; default: phase1, phase2, ..."
    )
    epochs: int = Field(ge=1, le=100000, description="Epochs this phase trains.")
    freeze: Patterns = Field(
        default_factory=list, description="Layers frozen from this phase on (added to those frozen before)."
    )
    unfreeze: Literal["all"] | Patterns = Field(
        default_factory=list,
        description="Layers trainable again from this phase on; `all`: every layer the spec does not mark `trainable: false`.",
    )
    optimizer: Optimizer | OptimizerName | None = Field(
        None,
        description="This phase's optimizer (a fresh one, its state starts empty); default: train.optimizer.",
    )
    learning_rate: float | None = Field(
        None,
        gt=0.0,
        le=10.0,
        description="The phase's optimizer with this learning rate (its schedule starts from it).",
    )

    @field_validator("optimizer", mode="after")
    @classmethod
    def _optimizer_by_name(cls, value):
        return optimizer_by_name(value)

    @field_validator("freeze")
    @classmethod
    def _distinct_freeze(cls, value):
        return _distinct(value, "freeze")

    @model_validator(mode="after")
    def _not_both(self):
        unfrozen = [] if self.unfreeze == "all" else _distinct(list(self.unfreeze), "unfreeze")
        both = sorted(set(self.freeze) & set(unfrozen))
        if both or (self.unfreeze == "all" and self.freeze):
            named = ", ".join(both) or ", ".join(self.freeze)
            raise ValueError(f"a phase cannot both freeze and unfreeze {named}")
        return self


class FineTuning(StrictModel):
    """Mixed into TrainSpec: the frozen layers and the phases (see the module's docstring)."""

    freeze: Patterns = Field(
        default_factory=list,
        description="Layers frozen for training (from the first phase on): names or globs over layer names.",
    )
    phases: list[Phase] | None = Field(
        None,
        min_length=1,
        max_length=16,
        description="Train in phases, each with its epochs, frozen layers and optimizer; train.epochs is their sum.",
    )

    @field_validator("freeze")
    @classmethod
    def _distinct_freeze(cls, value):
        return _distinct(value, "freeze")

    @field_validator("phases")
    @classmethod
    def _named_phases(cls, value):
        if value is None:
            return value
        for index, phase in enumerate(value):
            if phase.name is None:
                phase.name = f"phase{index + 1}"
        names = [p.name for p in value]
        if len(set(names)) != len(names):
            raise ValueError("phase names must be distinct")
        return value

    def settle_epochs(self, epochs: int, epochs_given: bool) -> int:
        """train.epochs with phases: their sum (a given train.epochs must equal it)."""
        if not self.phases:
            return epochs
        total = sum(p.epochs for p in self.phases)
        if epochs_given and epochs != total:
            raise ValueError(
                f"train.epochs is {epochs} but the phases' epochs add up to {total}; "
                "drop train.epochs (it is their sum) or change a phase"
            )
        return total
