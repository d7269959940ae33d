"""Model + graph -> one row per layer, plus totals: the data every renderer shows."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from kbuilder.report.figures import ReceptiveField, macs, receptive_field
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


def _start_field(node) -> ReceptiveField | None:
    """Each input position sees itself; vectors of features have no positions."""
    shape = node.spec.shape
    spatial = shape if node.spec.dtype.startswith(("int", "uint")) else shape[:-1]
    return ReceptiveField((1,) * len(spatial), (1,) * len(spatial)) if spatial else None


def make_report(built) -> Report:
    """Rows for a `kbuilder.build.BuiltModel`."""
    model, graph = built.model, built.graph
    layers = {layer.name: layer for layer in model.layers}
    rows: list[Row] = []
    fields: dict[str, ReceptiveField | None] = {}
    extents: dict[str, tuple] = {}
    for node in graph.nodes:
        if node.kind == "input":
            fields[node.name] = _start_field(node)
            rank = len(fields[node.name].size) if fields[node.name] else 0
            extents[node.name] = tuple(node.spec.shape[:rank])
            rows.append(
                Row(
                    node.name,
                    "input",
                    list(node.spec.shape),
                    0,
                    0,
                    0,
                    fields[node.name],
                    node.line,
                    node.group,
                )
            )
            continue
        layer = layers[node.name]
        in_shapes = [tuple(layers[n].output.shape) for n in node.inputs]
        out_shape = tuple(layer.output.shape)
        extent = next((extents[n] for n in node.inputs if extents.get(n)), None)
        extents[node.name] = extent
        fields[node.name] = receptive_field(layer, [fields[n] for n in node.inputs], extent)
        rows.append(
            Row(
                name=node.name,
                kind=node.kind,
                output_shape=_shape(layer.output),
                params=_count(layer.weights),
                trainable_params=_count(layer.trainable_weights),
                macs=macs(layer, in_shapes[0], out_shape) if in_shapes else 0,
                receptive_field=fields[node.name],
                line=node.line,
                group=node.group,
                inputs=list(node.inputs),
            )
        )
    if not any(
        hasattr(layers[r.name], "kernel_size") or hasattr(layers[r.name], "pool_size")
        for r in rows
        if r.kind != "input"
    ):
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
    import numpy as np

    try:
        return np.dtype(str(dtype)).itemsize
    except TypeError:
        return 2 if "16" in str(dtype) else 4
