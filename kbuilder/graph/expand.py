"""Expansion: spec -> one flat graph of named layer nodes (pure Python, no Keras).

Blocks, `repeat`, `branches`, `residual` and `inception` become plain nodes here;
names, references, cycles and unused outputs are checked before anything is built.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from pydantic import ValidationError

from kbuilder.errors import Location, Problem, SpecError, did_you_mean
from kbuilder.graph.budget import ExpansionTooLarge
from kbuilder.graph.channels import ChannelCounts
from kbuilder.graph.graph import SEP, Graph
from kbuilder.graph.nodes import PREV, EarlierOutputs, Frame, NodeTable, Ref
from kbuilder.graph.order import check_unused, topological_order
from kbuilder.graph.params import ParamError, mentions, shallow_substitute
from kbuilder.graph.unused import unused_parameters
from kbuilder.spec import LoadedSpec
from kbuilder.spec.diagnostics import spec_error_from_validation
from kbuilder.spec.entry import EntryError, entry_kind, validate_entry
from kbuilder.spec.loader import PathTuple
from kbuilder.spec.registry import LAYER_KINDS, LayerSpec

NESTED_KEYS = frozenset({"layers", "paths", "shortcut"})
IN_CHANNELS = "in_channels"  # late-bound: the channel count of the layer's input
CHANNELS_STAND_IN = 1024
MAX_BLOCK_DEPTH = 32


class Expander(NodeTable):
    """Walks the spec's layer lists, entry by entry, composites into their layers."""

    def __init__(self, loaded: LoadedSpec):
        super().__init__(loaded)
        self.composites: dict[str, Callable] = {
            "branches": self._branches,
            "residual": self._residual,
            "repeat": self._repeat,
            "block": self._block,
            "inception": self._inception,
        }
        self.channels = ChannelCounts(self.nodes, self._resolved_inputs)

    # -- entry points ------------------------------------------------------------------
    def run(self) -> Graph:
        for name, spec in self.spec.inputs.items():
            self._add(name, "input", spec, [], self.source.locate(("inputs", name)), Frame("", (), {}))
        names = self.input_names = list(self.spec.inputs)
        prev = Ref((names[0],), self.source.locate(("inputs",))) if len(names) == 1 else None
        top = Frame("", (), dict(self.spec.params))
        last = self.expand_list(self.spec.layers, ("layers",), top, prev)
        outputs = [
            Ref((name,), self.source.locate(("outputs", i))) for i, name in enumerate(self.spec.outputs or [])
        ]
        if last is None and not outputs:
            raise SpecError(
                [Problem(self.source.locate(("layers",)), "every layer is left out: nothing to output")]
            )
        output_names = [self._resolve(r) for r in outputs]
        if not output_names and last is not None:
            output_names = [self._resolve(last)]
        for node in self.nodes:
            node.inputs = [self._resolve(r) for r in self.refs.pop(node.name)]
            node.shape_refs = [self._resolve(r) for r in self.shape_refs.pop(node.name, [])]
        graph = Graph(
            self.spec.name,
            self.nodes,
            names,
            output_names,
            self.aliases,
            self.groups,
            list(self.warnings.values()),
        )
        graph.nodes = topological_order(graph)
        check_unused(graph)
        return graph

    def expand_list(self, raw_layers: list, path: PathTuple, frame: Frame, prev: Ref | None) -> Ref | None:
        # Go on past a bad entry so that one run reports every bad entry, not only the first;
        # references are resolved only once the whole spec expanded without a problem.
        # A block used many times reports a problem in its body once (at its first use).
        problems: dict[tuple, Problem] = {}
        for index, raw in enumerate(raw_layers):
            try:
                prev = self.expand_entry(raw, path + (index,), index, frame, prev)
            except ExpansionTooLarge:
                raise
            except SpecError as exc:
                for problem in exc.problems:
                    problems.setdefault((problem.location, problem.message), problem)
        if problems:
            raise SpecError(list(problems.values()))
        return prev

    def _chain(self, raw_layers: list, path: PathTuple, frame: Frame, source: Ref) -> Ref:
        """A composite's layer list applied to `source`: its last output (`source` when every
        entry is left out)."""
        return self.expand_list(raw_layers, path, frame, source) or source

    def expand_entry(
        self, raw: Any, path: PathTuple, index: int, frame: Frame, prev: Ref | None
    ) -> Ref | None:
        location = self.source.locate(path)
        self.budget.count(location, frame.context, len(frame.group))
        late = IN_CHANNELS not in frame.scope and mentions(raw, IN_CHANNELS, NESTED_KEYS)
        # `${in_channels}` is known only when the input tensor exists: check the entry now
        # with a stand-in value, and validate it again at build time with the real one.
        spec = self._validate(
            raw, path, frame, {**frame.scope, IN_CHANNELS: CHANNELS_STAND_IN} if late else frame.scope
        )
        inputs = [self._ref(n, frame, location) for n in spec.inputs] if spec.inputs else None
        if late and spec.composite:
            # A composite's arguments shape what it expands into: bind the count now, from the spec.
            channels = self._known_channels(inputs[0] if inputs else prev, location, frame, spec.kind)
            spec = self._validate(raw, path, frame, {**frame.scope, IN_CHANNELS: channels})
            inputs = [self._ref(n, frame, location) for n in spec.inputs] if spec.inputs else None
            late = False
        if late and _mentions_in_when(raw):
            raise SpecError(
                [
                    Problem(
                        location,
                        f"`when:` cannot use `${{{IN_CHANNELS}}}` in a plain layer: whether the layer exists must be known before its input is built",
                        frame.context,
                    )
                ]
            )
        if not spec.when:  # left out: the chain goes on from the previous entry
            return prev
        name = frame.prefix + (spec.name or f"{spec.kind}_{index}")
        if spec.kind == "input":  # starts a new chain: a model input declared among the layers
            self._add(name, "input", spec, [], location, frame)
            self.input_names.append(name)
            return Ref((name,), location)
        if inputs is None:
            if prev is None:
                raise SpecError(
                    [
                        Problem(
                            location,
                            "the model has several inputs; say which this layer takes with `inputs:`",
                            frame.context,
                        )
                    ]
                )
            inputs = [prev]
        if spec.composite:
            if len(inputs) != 1:
                raise SpecError(
                    [Problem(location, f"a {spec.kind} takes one input, got {len(inputs)}", frame.context)]
                )
            self._claim(name, location, frame.context)
            self.groups[name] = (spec.kind, location)
            inner = replace(frame, frozen=True) if not spec.trainable else frame
            out = self.composites[spec.kind](spec, name, path + (spec.kind,), inner, inputs[0])
            self.aliases[name] = out.candidates[0]
            return Ref((name,), location)
        self._add(name, spec.kind, spec, inputs, location, frame)
        if late:
            self.nodes[-1].rebind = lambda channels: self._validate(
                raw, path, frame, {**frame.scope, IN_CHANNELS: channels}
            )
        return Ref((name,), location)

    def _validate(self, raw: Any, path: PathTuple, frame: Frame, scope: dict) -> LayerSpec:
        """Substitute parameters into one entry and validate it, with located errors."""
        location = self.source.locate(path)
        try:
            entry = shallow_substitute(raw, scope, NESTED_KEYS)
            return validate_entry(entry)
        except (ParamError, EntryError) as exc:
            raise SpecError([Problem(location, str(exc), frame.context)]) from None
        except ValidationError as exc:
            kind = entry_kind(entry) if isinstance(entry, dict) else entry  # `- dense`: a bare kind
            args = entry[kind] if isinstance(entry, dict) else None
            raise spec_error_from_validation(
                exc, args, self.source, base=path + (kind,), root=LAYER_KINDS[kind], context=frame.context
            ) from None

    def _known_channels(self, source: Ref | None, location: Location, frame: Frame, kind: str) -> int:
        """The channel count of `source` as the spec tells it, for `${in_channels}` in a composite."""
        return self.channels.require(self._resolve(source) if source else None, location, frame.context, kind)

    # -- composites ----------------------------------------------------------------------
    def _branches(self, spec, name: str, path: PathTuple, frame: Frame, source: Ref) -> Ref:
        inner = frame.enter(f"{name}{SEP}", group=frame.group + (name,))
        outs = [
            self._chain(layers, path + ("paths", pname), inner.enter(f"{name}{SEP}{pname}{SEP}"), source)
            if layers
            else source
            for pname, layers in spec.paths.items()
        ]
        merge_args = {"axis": spec.axis} if spec.merge == "concat" else None
        return self._internal(f"{name}{SEP}{spec.merge}", {spec.merge: merge_args}, outs, path, inner)

    def _residual(self, spec, name: str, path: PathTuple, frame: Frame, source: Ref) -> Ref:
        inner = frame.enter(f"{name}{SEP}", group=frame.group + (name,))
        body = self._chain(spec.layers, path + ("layers",), inner, source)
        if spec.shortcut == "identity":
            shortcut = source
        elif spec.shortcut == "projection":
            projection = {"projection": {"use_bias": spec.projection_use_bias}}
            shortcut = self._internal(
                f"{name}{SEP}projection", projection, [source], path + ("shortcut",), inner
            )
            self.shape_refs[self.nodes[-1].name] = [body]
            norm = spec.projection_batch_norm
            if norm is not False:
                args = None if norm is True else norm.explicit()
                shortcut = self._internal(
                    f"{name}{SEP}projection_bn", {"batch_norm": args}, [shortcut], path + ("shortcut",), inner
                )
        else:
            sc_frame = inner.enter(f"{name}{SEP}shortcut{SEP}")
            shortcut = self._chain(spec.shortcut, path + ("shortcut",), sc_frame, source)
        out = self._internal(f"{name}{SEP}add", {"add": None}, [body, shortcut], path, inner)
        if spec.activation:
            out = self._internal(
                f"{name}{SEP}{spec.activation}", {"activation": spec.activation}, [out], path, inner
            )
        return out

    def _repeat(self, spec, name: str, path: PathTuple, frame: Frame, source: Ref) -> Ref:
        self.budget.repeat(self.source.locate(path), frame.context, spec.times, spec.layers)
        outputs = [source]  # the input, then each iteration's output: `${prev(k)}` reads them
        for r in range(spec.times):
            earlier = EarlierOutputs(outputs, self._resolve, name, spec.index)
            scope = {**frame.scope, spec.index: r, PREV: earlier}
            prefix = f"{name}{SEP}{r}{SEP}" if spec.prefix else frame.prefix
            inner = frame.enter(prefix, group=frame.group + (name,), scope=scope)
            outputs.append(self._chain(spec.layers, path + ("layers",), inner, outputs[-1]))
        return outputs[-1]

    def _block(self, spec, name: str, path: PathTuple, frame: Frame, source: Ref) -> Ref:
        location = self.source.locate(path + ("use",))
        block = self.spec.blocks.get(spec.use)
        if block is None:
            known = ", ".join(sorted(self.spec.blocks)) or "none defined under `blocks:`"
            raise SpecError(
                [
                    Problem(
                        location,
                        f"unknown block '{spec.use}'{did_you_mean(spec.use, self.spec.blocks)} (known: {known})",
                        frame.context,
                    )
                ]
            )
        if spec.use in frame.blocks or len(frame.blocks) >= MAX_BLOCK_DEPTH:
            chain = " -> ".join(frame.blocks + (spec.use,))
            raise SpecError([Problem(location, f"block '{spec.use}' uses itself ({chain})", frame.context)])
        self.budget.block(location, frame.context, spec.use)
        unknown = [a for a in spec.args if a not in block.params]
        missing = [p for p, default in block.params.items() if default is None and p not in spec.args]
        problems = [
            Problem(
                self.source.locate(path + ("args", a)),
                f"block '{spec.use}' has no parameter '{a}'{did_you_mean(a, block.params)}",
                frame.context,
            )
            for a in unknown
        ] + [
            Problem(location, f"block '{spec.use}' needs the argument '{p}'", frame.context) for p in missing
        ]
        if problems:
            raise SpecError(problems)
        self.warnings.update(unused_parameters(spec, block, path, self.source, frame.context))
        scope = {**self.spec.params, **block.params, **spec.args}
        where = f"in block '{spec.use}' used at {location.prefix()}"
        context = f"{where}; {frame.context}" if frame.context else where
        inner = frame.enter(
            f"{name}{SEP}" if spec.prefix else frame.prefix,  # `prefix: false`: the names as written
            group=frame.group + (name,),
            scope=scope,
            context=context,
            blocks=frame.blocks + (spec.use,),
        )
        return self._chain(block.layers, ("blocks", spec.use, "layers"), inner, source)

    def _inception(self, spec, name: str, path: PathTuple, frame: Frame, source: Ref) -> Ref:
        branches = validate_entry({"branches": spec.as_branches()})
        return self._branches(branches, name, path, frame, source)


def _mentions_in_when(raw: Any) -> bool:
    args = next(iter(raw.values())) if isinstance(raw, dict) and len(raw) == 1 else None
    return isinstance(args, dict) and mentions({"when": args.get("when")}, IN_CHANNELS, frozenset())


def expand(loaded: LoadedSpec) -> Graph:
    """Expand a validated spec into its flat, checked layer graph."""
    return Expander(loaded).run()
