"""The nodes expansion has produced so far: their names (each claimed once), the references
between them (resolved innermost scope first, through composite aliases) and the frames
expansion walks in. kbuilder.graph.expand walks the spec and adds nodes here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from kbuilder.errors import Location, Problem, SpecError, did_you_mean
from kbuilder.graph.budget import ExpansionBudget
from kbuilder.graph.expressions import ParamError, ScopeFunction
from kbuilder.graph.graph import Node
from kbuilder.spec import LoadedSpec
from kbuilder.spec.entry import validate_entry
from kbuilder.spec.layers.projection import ProjectionSpec
from kbuilder.spec.loader import PathTuple

# Nodes the expander adds itself whose spec is not a registered kind.
INTERNAL_SPECS = {"projection": ProjectionSpec}


@dataclass(frozen=True)
class Ref:
    """An unresolved layer reference: the names to try, innermost scope first."""

    candidates: tuple[str, ...]
    location: Location
    context: str = ""


@dataclass(frozen=True)
class Frame:
    """Where expansion is: name prefix, display group, block call stack, parameters."""

    prefix: str
    group: tuple[str, ...]
    scope: dict
    context: str = ""
    blocks: tuple[str, ...] = ()
    frozen: bool = False
    prefixes: tuple[str, ...] = ("",)  # every enclosing prefix, for resolving references

    def enter(self, prefix: str, **changes: Any) -> Frame:
        return replace(self, prefix=prefix, prefixes=self.prefixes + (prefix,), **changes)


PREV = "prev"  # the function a repeated body calls for an earlier iteration's output


class EarlierOutputs(ScopeFunction):
    """`prev(k)` in the body of a `repeat`: the name of the output of the iteration `k`
    before this one; `prev(1)` is what the body's first layer takes anyway, and one step
    before the first iteration is the repeat's input. `prev(k, 'name')` gives `name`
    where the iteration would come before the repeat's input (NASNet's first cells take
    the stem twice). The result is a layer name for `inputs:` or a block argument."""

    name = PREV

    def __init__(self, outputs: list[Ref], resolve: Callable[[Ref], str], repeat: str, index: str):
        # outputs[0] is the repeat's input, outputs[i] the output of iteration i - 1. The list
        # only grows: this iteration sees its first `count` items, also when its body is
        # validated again at build time (a copy per iteration would be quadratic in `times`).
        self.outputs, self.count = outputs, len(outputs)
        self.resolve, self.repeat, self.index = resolve, repeat, index

    def __call__(self, *args: Any) -> str:
        if not 1 <= len(args) <= 2:
            raise ParamError(
                "prev() takes k, and optionally the layer to take where iteration k back would come "
                f"before the repeat's input; got {len(args)} arguments"
            )
        steps = args[0]
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ParamError(
                f"prev(k) takes a whole number k >= 1 (prev(1): the previous iteration's output), got {steps!r}"
            )
        if len(args) == 2 and not isinstance(args[1], str):
            raise ParamError(f"prev(k, name): the name is a layer's, in quotes; got {args[1]!r}")
        if steps <= self.count:
            return self.resolve(self.outputs[self.count - steps])
        if len(args) == 2:
            return args[1]
        raise ParamError(
            f"prev({steps}) in iteration {self.count - 1} of repeat '{self.repeat}' reaches before the "
            f"repeat's input (prev({self.count}) is the input there); name the layer to take instead, e.g. "
            f"prev({steps}, 'stem'), or choose by the iteration: "
            f"prev({steps}) if {self.index} >= {steps - 1} else prev(1)"
        )


class NodeTable:
    """The nodes so far, with their unresolved input references and the names taken."""

    def __init__(self, loaded: LoadedSpec):
        self.loaded = loaded
        self.spec = loaded.spec
        self.source = loaded.source
        self.budget = ExpansionBudget(self.spec.blocks)  # bounds hostile repeats and block fan-outs
        self.nodes: list[Node] = []
        self.refs: dict[str, list[Ref]] = {}
        self.shape_refs: dict[str, list[Ref]] = {}  # tensors a node reads for their shape only
        self.where: dict[str, Location] = {}
        self.aliases: dict[str, str] = {}
        self.groups: dict[str, tuple[str, Location]] = {}
        self.warnings: dict[tuple, Problem] = {}  # unused block parameters, each place once

    def _internal(self, name: str, entry: dict, inputs: list[Ref], path: PathTuple, frame: Frame) -> Ref:
        """A node the expander adds itself (merges, projections), located at its composite."""
        (kind,) = entry
        self.budget.count(self.source.locate(path), frame.context, len(frame.group))
        spec = (
            INTERNAL_SPECS[kind](**(entry[kind] or {})) if kind in INTERNAL_SPECS else validate_entry(entry)
        )
        location = self.source.locate(path)
        self._add(name, kind, spec, inputs, location, frame)
        return Ref((name,), location)

    def _add(self, name: str, kind: str, spec: Any, inputs: list, location: Location, frame: Frame) -> None:
        self._claim(name, location, frame.context)
        self.refs[name] = list(inputs)
        frozen = frame.frozen or not getattr(spec, "trainable", True)
        self.nodes.append(Node(name, kind, spec, [], location, frame.context, frame.group, frozen=frozen))

    def _claim(self, name: str, location: Location, context: str) -> None:
        if name in self.where:
            first = self.where[name]
            # The same line twice: an unprefixed block or `repeat` whose names do not vary.
            again = (
                "; a block used with `prefix: false` (or such a `repeat`) must make its names differ "
                "by its arguments (or `${index}`)"
                if (first.file, first.line) == (location.file, location.line)
                else ""
            )
            raise SpecError(
                [
                    Problem(
                        location,
                        f"duplicate layer name '{name}' (first used at line {first.line}{again})",
                        context,
                    )
                ]
            )
        self.where[name] = location

    def _ref(self, name: str, frame: Frame, location: Location) -> Ref:
        candidates = tuple(prefix + name for prefix in reversed(frame.prefixes))
        return Ref(candidates, location, frame.context)

    def _resolve(self, ref: Ref) -> str:
        for candidate in ref.candidates:
            if candidate in self.aliases:
                return self._resolve(Ref((self.aliases[candidate],), ref.location, ref.context))
            if candidate in self.where:
                return candidate
        wanted = ref.candidates[-1]
        hint = did_you_mean(wanted, list(self.where))
        raise SpecError([Problem(ref.location, f"undefined layer '{wanted}'{hint}", ref.context)])

    def _resolved_inputs(self, node: Node) -> list[str | None]:
        names: list[str | None] = []
        for ref in self.refs.get(node.name, []):
            try:
                names.append(self._resolve(ref))
            except SpecError:  # defined later: not known yet
                names.append(None)
        return names
