"""Which layers each phase of a run trains: `train.freeze` and `train.phases` resolved
against the expanded spec's layer names, and applied to the built model.

One mechanism freezes layers: Keras's `layer.trainable = False`, which `build` sets for a
layer the spec marks `trainable: false` (or one inside such a composite) and this module
sets for the layers the patterns name. A frozen BatchNormalization also runs in inference
mode in Keras 3 (its moving statistics stay as they are), as the transfer-learning guide
prescribes. The spec's `trainable: false` layers stay frozen in every phase: `unfreeze`
gives back only what `freeze` took.

No Keras import here: the patterns are checked before the run directory is opened.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from kbuilder.errors import Problem, SpecError, UsageError, did_you_mean
from kbuilder.graph.expand import expand
from kbuilder.graph.graph import Graph


@dataclass(frozen=True)
class PhasePlan:
    """One phase: epochs (start, end], the node names frozen in it, its optimizer section."""

    name: str | None  # None: the run has no phases (one stretch of train.epochs)
    start: int
    end: int
    frozen: frozenset[str]
    optimizer: Any  # kbuilder.spec.train.Optimizer
    layers: frozenset[str]  # every layer the spec names (the only ones `apply` touches)

    @property
    def epochs(self) -> int:
        return self.end - self.start


class _Layers:
    """The expanded spec's layers: each name with the composites around it, and where
    each pattern is written (for located errors)."""

    def __init__(self, loaded: Any, graph: Graph | None):
        graph = graph or expand(loaded)
        self.groups = {n.name: n.group for n in graph.nodes if n.kind != "input"}
        self.fixed = frozenset(n.name for n in graph.nodes if n.frozen)  # `trainable: false`
        self.source = loaded.source
        self.problems: list[Problem] = []

    def match(self, patterns: list[str], path: tuple) -> set[str]:
        """The layers the patterns name; a pattern that names none becomes a located problem."""
        found: set[str] = set()
        for index, pattern in enumerate(patterns):
            hits = {
                name
                for name, groups in self.groups.items()
                if fnmatchcase(name, pattern) or any(fnmatchcase(g, pattern) for g in groups)
            }
            if not hits:
                known = set(self.groups) | {g for groups in self.groups.values() for g in groups}
                self.problems.append(
                    Problem(
                        self.source.locate(path + (index,)),
                        f"'{pattern}' matches no layer{did_you_mean(pattern, known)} "
                        "(give a layer name, a composite's name or a glob over them; "
                        "`kbuilder check` lists the names)",
                    )
                )
            found |= hits
        return found


def plan_phases(loaded: Any, graph: Graph | None = None) -> list[PhasePlan]:
    """The run's phases (one when the spec has none), each with its frozen layers; every
    pattern that names no layer is reported, located, in one SpecError. `graph`: the
    spec's expanded graph where the caller has it."""
    train = loaded.spec.train
    layers = _Layers(loaded, graph)
    frozen = layers.fixed | layers.match(train.freeze, ("train", "freeze"))
    names = frozenset(layers.groups)
    if not train.phases:
        plans = [PhasePlan(None, 0, train.epochs, frozen, train.optimizer, names)]
    else:
        plans, start = [], 0
        for index, phase in enumerate(train.phases):
            path = ("train", "phases", index)
            frozen = frozen | layers.match(phase.freeze, path + ("freeze",))
            if phase.unfreeze == "all":
                frozen = layers.fixed
            else:
                frozen = (frozen - layers.match(list(phase.unfreeze), path + ("unfreeze",))) | layers.fixed
            plans.append(
                PhasePlan(phase.name, start, start + phase.epochs, frozen, _optimizer(train, phase), names)
            )
            start += phase.epochs
    if layers.problems:
        raise SpecError(layers.problems)
    return plans


def _optimizer(train: Any, phase: Any) -> Any:
    """The phase's optimizer section: its own or train's, with its learning rate if given."""
    optimizer = phase.optimizer or train.optimizer
    if phase.learning_rate is not None:
        optimizer = optimizer.model_copy(update={"learning_rate": phase.learning_rate})
    return optimizer


def apply(model: Any, plan: PhasePlan) -> int:
    """Set `trainable` on the model's layers that the spec names as the phase wants;
    returns the trainable parameter count that follows."""
    for layer in model.layers:
        if layer.name in plan.layers:
            layer.trainable = layer.name not in plan.frozen
    return sum(int(_size(w)) for w in model.trainable_weights)


def require_trainable(count: int, plan: PhasePlan) -> int:
    """`count` (trainable parameters), unless it is 0: a run that would train nothing is refused."""
    if count == 0:
        where = f"phase '{plan.name}'" if plan.name else "train.freeze"
        raise UsageError(
            f"{where} leaves no trainable weight (every layer with weights is frozen); "
            "freeze fewer layers or unfreeze some in train.phases"
        )
    return count


def _size(weight: Any) -> int:
    count = 1
    for dim in weight.shape:
        count *= int(dim)
    return count
