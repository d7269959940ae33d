"""Runs of identical layer sequences (the same kinds, arguments and wiring; only the names
differ): what a `repeat` or a block could fold.

A fold is written only where the expanded spec keeps every layer's name. kbuilder names a
layer inside a composite `outer-inner` (a `-` between them), while Keras's names have no `-`
(`conv2_block1_1_conv`): a fold would rename every layer inside it, and weights that load by
name would no longer find them. So the importer writes the spec flat and reports the runs it
found, with the lines a fold would take, as the measure of what a renaming fold would save.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from kbuilder.importer.spec_writer import SpecLayer

MAX_PERIOD = 64


@dataclass(frozen=True)
class Run:
    """`times` repetitions of `period` layers starting at layer `start`."""

    start: int
    period: int
    times: int

    @property
    def layers(self) -> int:
        return self.period * self.times


def _signatures(layers: list[SpecLayer]) -> list[str]:
    """Each layer without its name: kind, arguments and where its inputs are (as offsets back,
    so the same wiring in the next repetition gives the same signature)."""
    index = {layer.name: i for i, layer in enumerate(layers)}
    signatures = []
    for i, layer in enumerate(layers):
        wiring = [i - index[n] if n in index else f"input:{n}" for n in layer.inputs]
        signatures.append(json.dumps([layer.kind, layer.args, wiring], sort_keys=True))
    return signatures


def find_runs(layers: list[SpecLayer]) -> list[Run]:
    """Non-overlapping runs, left to right, each the longest repetition starting there."""
    signatures = _signatures(layers)
    runs: list[Run] = []
    i, n = 0, len(signatures)
    while i < n:
        best = Run(i, 1, 1)
        for period in range(1, min(MAX_PERIOD, (n - i) // 2) + 1):
            times = 1
            while (
                i + (times + 1) * period <= n
                and signatures[i + times * period : i + (times + 1) * period] == signatures[i : i + period]
            ):
                times += 1
            if times > 1 and period * times > best.layers:
                best = Run(i, period, times)
        if best.times > 1:
            runs.append(best)
            i += best.layers
        else:
            i += 1
    return runs


def folded_lines(layers: list[SpecLayer], runs: list[Run]) -> int:
    """Layer lines a fold of `runs` would take: one body (plus a `repeat` header) per run."""
    covered = sum(run.layers for run in runs)
    return len(layers) - covered + sum(run.period + 3 for run in runs)
