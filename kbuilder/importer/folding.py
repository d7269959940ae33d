"""Runs of identical layer sequences (the same kinds, arguments and wiring; only the names
differ), and how each is written folded: a `repeat` or block uses with `prefix: false`.

A fold keeps every layer's Keras name (weights load by name): the names are written as
templates, `conv2_block${index + 2}_1_conv`, which the unprefixed `repeat` or block use
expands back to the original names. A run whose names follow no such template stays flat,
and kbuilder.importer.fold_check keeps a fold only where the expanded spec is the flat one.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field

from kbuilder.importer.spec_writer import CHAIN, SpecLayer

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

    @property
    def end(self) -> int:
        return self.start + self.layers


@dataclass
class Fold:
    """A run written once: `body` (names and inputs as templates) as a `repeat` (`uses` empty)
    or as a block `name` used once per repetition (`uses`: each use's name and arguments)."""

    run: Run
    name: str
    params: list[str]
    body: list[SpecLayer]
    uses: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    @property
    def whole_names(self) -> int:
        """Layers whose whole name is an argument (no template fits them)."""
        return sum(param.startswith("name") for param in self.params)

    @property
    def lines(self) -> int:
        """Spec lines: a `repeat` header (5) or a block definition (3) and its uses, plus the body."""
        return len(self.body) + (3 + len(self.uses) if self.uses else 5)


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


def _name_template(names: list[str]) -> tuple[str, list[str], str]:
    """`names` as prefix + a varying middle + suffix, the middle holding whole numbers."""
    prefix = os.path.commonprefix(names)
    shortest = min(len(n) for n in names) - len(prefix)
    suffix = os.path.commonprefix([n[::-1][:shortest] for n in names])[::-1]
    # `block1` + `0`/`1` -> `block` + `10`/`11`: a number is never split between the parts.
    while prefix and prefix[-1].isdigit():
        prefix = prefix[:-1]
    while suffix and suffix[0].isdigit():
        suffix = suffix[1:]
    middles = [n[len(prefix) : len(n) - len(suffix)] for n in names]
    return prefix, middles, suffix


def _counting(middles: list[str]) -> int | None:
    """The first number when the middles count up by one (`2`, `3`, `4`), else None."""
    if not all(re.fullmatch(r"0|[1-9][0-9]{0,5}", m) for m in middles):
        return None
    first = int(middles[0])
    return first if [int(m) for m in middles] == list(range(first, first + len(middles))) else None


def _unique(wanted: str, taken: set[str]) -> str:
    name, n = wanted, 2
    while name in taken or not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,119}", name):
        name, n = f"{wanted.strip('_-')[:100] or 'unit'}_{n}", n + 1
    taken.add(name)
    return name


def _classify_inputs(reps: list[list[SpecLayer]], previous: str | None) -> list[list[tuple[str, list[str]]]]:
    """Per body layer, each input as (what, values per repetition): `own` (a layer of the
    same repetition, by position), `chain` (the first layer takes the repetition's input),
    `source` (the repetition's input, taken by name), `fixed` (one outer layer) or `varies`."""
    sources = [previous] + [rep[-1].name for rep in reps[:-1]]  # each repetition's input
    position = {layer.name: k for k, layer in enumerate(reps[0])}
    body_inputs = []
    for j, layer in enumerate(reps[0]):
        inputs = []
        for i, name in enumerate(layer.inputs):
            values = [rep[j].inputs[i] for rep in reps]
            if name in position:
                inputs.append(("own", [str(position[name])]))
            elif values == sources and len(layer.inputs) == 1 and j == 0:
                inputs.append(("chain", values))
            elif values == sources:
                inputs.append(("source", values))
            elif len(set(values)) == 1:
                inputs.append(("fixed", values))
            else:
                inputs.append(("varies", values))
        body_inputs.append(inputs)
    return body_inputs


def plan_fold(layers: list[SpecLayer], run: Run, previous: str | None, taken: set[str]) -> Fold | None:
    """The fold of `run` (`previous`: the layer before it), or None where the names of the
    repetitions' first layers share no varying part. The other layers' names are templates
    with that part (`conv2_block${unit}_1_conv`), or else whole names given as arguments."""
    reps = [layers[run.start + r * run.period : run.start + (r + 1) * run.period] for r in range(run.times)]
    unit = _name_template([layer.name for layer in [rep[0] for rep in reps]])[1]
    if len(set(unit)) != run.times:
        return None
    templates: list[tuple[str, str]] = []
    named: dict[int, str] = {}  # layers whose names vary otherwise (`add`, `add_1`): an argument each
    for j in range(run.period):
        prefix, middles, suffix = _name_template([rep[j].name for rep in reps])
        if middles != unit:
            named[j] = f"name{j}"
        templates.append((prefix, suffix))
    first = _counting(unit)
    body_inputs = _classify_inputs(reps, previous)
    as_repeat = (
        first is not None and not named and all(w != "varies" for inputs in body_inputs for w, _ in inputs)
    )
    unit_expr = (f"${{index + {first}}}" if first else "${index}") if as_repeat else "${unit}"

    def template(k: int) -> str:
        return f"${{{named[k]}}}" if k in named else templates[k][0] + unit_expr + templates[k][1]

    params = [] if as_repeat else ["unit", *named.values()]
    args: list[dict[str, str]] = [
        {"unit": u, **{param: rep[j].name for j, param in named.items()}} for u, rep in zip(unit, reps)
    ]
    outer = 0  # outer layers a repetition takes, each an argument: in0, in1, ...
    body = []
    for j, inputs in enumerate(body_inputs):
        written = []
        for what, values in inputs:
            if what == "own":
                written.append(template(int(values[0])))
            elif what == "chain":
                written.append(CHAIN)
            elif what == "fixed":
                written.append(values[0])
            elif as_repeat:  # the repetition's input
                written.append("${prev(1)}")
            else:
                param, outer = f"in{outer}", outer + 1
                params.append(param)
                for use, value in zip(args, values):
                    use[param] = value
                written.append(f"${{{param}}}")
        body.append(SpecLayer(reps[0][j].kind, template(j), written, reps[0][j].args))
    stem = templates[0][0].strip("_-") or "unit"
    if as_repeat:
        return Fold(run, _unique(f"{stem}_repeat", taken), params, body)
    uses = [(_unique(templates[0][0] + u, taken), a) for u, a in zip(unit, args)]
    return Fold(run, stem, params, body, uses)


def _alignments(run: Run, signatures: list[str]) -> list[Run]:
    """`run` and its rotations: a repetition found from its second layer on (ResNet's runs
    start at a unit's last layer) is one whose names line up when started a few layers later."""
    shifted = [run]
    for shift in range(1, run.period):
        if signatures[run.end : run.end + shift] == signatures[run.start : run.start + shift]:
            shifted.append(Run(run.start + shift, run.period, run.times))
        elif run.times > 2:
            shifted.append(Run(run.start + shift, run.period, run.times - 1))
    return shifted


def plan_folds(layers: list[SpecLayer], runs: list[Run], first_input: str | None) -> list[Fold]:
    """A fold for each run that has a name template and takes fewer lines than flat."""
    signatures = _signatures(layers)
    taken = {layer.name for layer in layers}
    folds: list[Fold] = []
    blocks: set[str] = set()
    for found in runs:
        # The alignment whose names vary least otherwise (fewest whole-name arguments), then
        # the shortest: ResNet's run found from `conv2_block1_out` lines up one layer later.
        best: Fold | None = None
        for run in _alignments(found, signatures):
            if folds and run.start < folds[-1].run.end:
                continue
            previous = layers[run.start - 1].name if run.start else first_input
            fold = plan_fold(layers, run, previous, set(taken))
            if fold is None or fold.lines >= run.layers or 2 * fold.whole_names > run.period:
                continue
            if best is None or (fold.whole_names, fold.lines) < (best.whole_names, best.lines):
                best = fold
        if best is not None:
            taken.update([best.name] if not best.uses else [name for name, _ in best.uses])
            if best.uses:
                best.name = _unique(best.name, blocks)
            folds.append(best)
    return folds
