"""The expansion budget: how many layer entries a spec may expand to, and how deep.

`repeat` inside `repeat`, or blocks using blocks twice each, multiply: every entry
expanded (a repetition that adds nothing included) counts against MAX_LAYERS, so a
hostile spec is refused after a bounded number of steps; composites nested in
composites (through block uses too) recurse in Python, so their depth is bounded too.

A cheap lower bound on how many entries a list of raw layers expands to:

Expansion validates every entry it produces (about 0.1 ms each), so a spec whose
`repeat`s or blocks multiply to 10^8 layers would take hours to reach the expander's
MAX_LAYERS count. Before a `repeat` or a block use is expanded, the expander asks this
module how much it will produce at least and refuses at once when that is past the limit.

The bound walks the raw data only (nothing is validated or substituted): a count that
is not yet known (`times: ${n}`) counts as zero, so a spec is never refused here that
the exact count during expansion would have accepted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kbuilder.errors import Location, Problem, SpecError

MAX_LAYERS = 100_000
MAX_NESTING = 64  # composites inside composites, block uses included: a few Python frames a level
NESTED_LISTS = {"repeat": ("layers",), "residual": ("layers", "shortcut")}
# Deeper than this (through block uses) counts as zero: still a lower bound, and the
# walk stays far from Python's recursion limit. Expansion refuses such depths anyway.
MAX_LEVELS = 100


class SizeBound:
    """Lower bounds on expanded sizes, memoized per block name and per raw list."""

    def __init__(self, blocks: Mapping[str, Any]):
        self.blocks = blocks
        self.memo: dict[int, int] = {}
        self.block_memo: dict[str, int] = {}
        self.open_blocks: set[str] = set()

    def of_list(self, raw_layers: Any, level: int = 0) -> int:
        if not isinstance(raw_layers, list) or level > MAX_LEVELS:
            return 0
        key = id(raw_layers)
        if key not in self.memo:
            self.memo[key] = sum(1 + self.inside(entry, level + 1) for entry in raw_layers)
        return self.memo[key]

    def of_block(self, name: str, level: int = 0) -> int:
        """What one use of block `name` expands to (0 while it is being measured: a cycle)."""
        if name in self.block_memo:
            return self.block_memo[name]
        block = self.blocks.get(name)
        if block is None or name in self.open_blocks:
            return 0
        self.open_blocks.add(name)
        size = self.of_list(getattr(block, "layers", None), level)
        self.open_blocks.discard(name)
        self.block_memo[name] = size
        return size

    def inside(self, entry: Any, level: int) -> int:
        """The entries nested inside one raw entry (not counting the entry itself)."""
        if not isinstance(entry, dict) or len(entry) != 1:
            return 0
        ((kind, args),) = entry.items()
        if not isinstance(args, dict):
            return self.of_block(args, level) if kind == "block" and isinstance(args, str) else 0
        if kind == "repeat":
            times = args.get("times")
            if isinstance(times, int) and not isinstance(times, bool) and times > 0:
                return times * self.of_list(args.get("layers"), level)
            return 0
        if kind == "block":
            use = args.get("use")
            return self.of_block(use, level) if isinstance(use, str) else 0
        if kind == "branches":
            paths = args.get("paths")
            return sum(self.of_list(p, level) for p in paths.values()) if isinstance(paths, dict) else 0
        return sum(self.of_list(args.get(key), level) for key in NESTED_LISTS.get(kind, ()))


class ExpansionTooLarge(SpecError):
    """The spec expands past MAX_LAYERS; the expander never collects it and goes on."""


class ExpansionBudget:
    """Counts expanded entries; refuses past MAX_LAYERS or MAX_NESTING, located."""

    def __init__(self, blocks: Mapping[str, Any]):
        self.expanded = 0
        self.bound = SizeBound(blocks)

    def count(self, location: Location, context: str, nesting: int) -> None:
        """One more entry, `nesting` composites deep."""
        self.expanded += 1
        if self.expanded > MAX_LAYERS:
            self._too_large(location, context, "this is where the limit was reached")
        if nesting >= MAX_NESTING:
            raise SpecError(
                [
                    Problem(
                        location,
                        f"composites nested deeper than {MAX_NESTING} levels (block uses included)",
                        context,
                    )
                ]
            )

    def repeat(self, location: Location, context: str, times: int, raw_layers: Any) -> None:
        self._ahead(location, context, times * self.bound.of_list(raw_layers), "repeat")

    def block(self, location: Location, context: str, name: str) -> None:
        self._ahead(location, context, self.bound.of_block(name), f"use of block '{name}'")

    def _ahead(self, location: Location, context: str, ahead: int, what: str) -> None:
        """Refuse a composite at once when what it will produce at least passes MAX_LAYERS."""
        if self.expanded + ahead > MAX_LAYERS:
            self._too_large(location, context, f"this {what} alone expands to at least {ahead:,}")

    @staticmethod
    def _too_large(location: Location, context: str, detail: str) -> None:
        raise ExpansionTooLarge(
            [
                Problem(
                    location,
                    f"the model expands to more than {MAX_LAYERS:,} layers (repeat counts and block uses "
                    f"multiply); {detail}",
                    context,
                )
            ]
        )
