"""Model + graph -> one row per layer, plus totals: the data every renderer shows.

`make_report` reads a built Keras model; kbuilder.report.static makes the same rows from the
spec's rules alone (what `kbuilder build` and `check` print)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from kbuilder.graph.figures import FieldWalk, node_macs
from kbuilder.graph.receptive import ReceptiveField
from kbuilder.report.groups import GroupSummary, summarize_groups


@dataclass
class Row:
    name: str
    kind: str
    output_shape: list
    params: int
    trainable_params: int
    macs: int
    receptive_field: ReceptiveField | None
    line: int | None
    group: tuple[str, ...] = ()
    inputs: list[str] = field(default_factory=list)

    def as_json(self) -> dict:
        data = asdict(self)
        data["receptive_field"] = self.receptive_field.as_json() if self.receptive_field else None
        data["group"] = list(self.group)
        return data


@dataclass
class Report:
    name: str
    rows: list[Row]
    params: int
    trainable_params: int
    non_trainable_params: int
    macs: int
    weight_bytes: int
    output_shape: list
    groups: dict[str, tuple[str, int | None]]  # composite name -> (kind, line)
    file: str = ""
    group_summaries: dict[str, GroupSummary] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # located, from expansion

    def as_json(self) -> dict:
        return {
            "name": self.name,
            "file": self.file,
            "params": self.params,
            "trainable_params": self.trainable_params,
            "non_trainable_params": self.non_trainable_params,
            "macs": self.macs,
            "weight_bytes": self.weight_bytes,
            "output_shape": self.output_shape,
            "layers": [row.as_json() for row in self.rows],
            "groups": [g.as_json() for g in self.group_summaries.values()],
            "warnings": list(self.warnings),
        }


def _shape(tensor) -> list:
    return [None if d is None else int(d) for d in tensor.shape[1:]]


def _count(weights) -> int:
    return sum(math.prod(w.shape) for w in weights)


def make_report(built) -> Report:
    """Rows for a `kbuilder.build.BuiltModel`: shapes and weights from the built layers,
    MACs and receptive fields by the rules of each node's spec kind on those shapes."""
    model, graph = built.model, built.graph
    layers = {layer.name: layer for layer in model.layers}
    rows: list[Row] = []
    fields = FieldWalk()
    for node in graph.nodes:
        if node.kind == "input":
            field = fields.add(node, [])
            rows.append(Row(node.name, "input", list(node.spec.shape), 0, 0, 0, field, node.line, node.group))
            continue
        layer = layers[node.name]
        in_shapes = [tuple(layers[n].output.shape) for n in (*node.inputs, *node.shape_refs)]
        rows.append(
            Row(
                name=node.name,
                kind=node.kind,
                output_shape=_shape(layer.output),
                params=_count(layer.weights),
                trainable_params=_count(layer.trainable_weights),
                macs=node_macs(node, in_shapes, tuple(layer.output.shape)),
                receptive_field=fields.add(node, in_shapes),
                line=node.line,
                group=node.group,
                inputs=list(node.inputs),
            )
        )
    if not fields.windowed:
        for row in rows:  # no windows anywhere (an MLP): receptive fields say nothing
            row.receptive_field = None
    outputs = model.outputs
    output_shape = _shape(outputs[0]) if len(outputs) == 1 else [_shape(t) for t in outputs]
    trainable = _count(model.trainable_weights)
    total = _count(model.weights)
    weight_bytes = sum(math.prod(w.shape) * _itemsize(w.dtype) for w in model.weights)
    groups = {name: (kind, loc.line) for name, (kind, loc) in graph.groups.items()}
    return Report(
        name=graph.name,
        rows=rows,
        params=total,
        trainable_params=trainable,
        non_trainable_params=total - trainable,
        macs=sum(r.macs for r in rows),
        weight_bytes=weight_bytes,
        output_shape=output_shape,
        groups=groups,
        file=built.loaded.file,
        group_summaries=summarize_groups(graph, rows),
        warnings=[str(w) for w in getattr(graph, "warnings", ())],
    )


def _itemsize(dtype: Any) -> int:
    # numpy here, not at the top: the static report (kbuilder.report.static) shares this module
    # and imports no numpy; a built model has loaded it with Keras already.
    import numpy as np

    try:
        return np.dtype(str(dtype)).itemsize
    except TypeError:
        return 2 if "16" in str(dtype) else 4
