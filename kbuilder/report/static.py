"""The report of a StaticModel (kbuilder.build.static): the same rows, totals and group
subtotals as kbuilder.report.rows makes from a built Keras model, every figure from the
spec's rules, so `kbuilder build` and `check` print their tables without importing Keras.
tests/test_static_report.py compares both, cell by cell, on every bundled spec, every
documented example and hundreds of fuzzed ones.
"""

from __future__ import annotations

from kbuilder.build.static import StaticModel
from kbuilder.report.groups import summarize_groups
from kbuilder.report.rows import Report, Row
from kbuilder.spec.figures import TensorShape


def _dims(shape: TensorShape | None) -> list:
    """A shape as the table shows it: without the batch axis."""
    return [] if shape is None else list(shape[1:])


def static_report(model: StaticModel) -> Report:
    """Rows of a complete StaticModel (or the partial one of a failed build)."""
    if not model.complete:
        raise ValueError(f"the spec's rules cannot tell every figure: {model.fallback_note()}")
    graph, figures = model.graph, model.figures
    rows: list[Row] = []
    for node in graph.nodes:
        found = figures[node.name]
        if node.kind == "input":
            rows.append(
                Row(
                    node.name,
                    "input",
                    list(node.spec.shape),
                    0,
                    0,
                    0,
                    found.receptive_field,
                    node.line,
                    node.group,
                )
            )
            continue
        params = found.params
        assert params is not None and found.macs is not None  # a complete model has every figure
        rows.append(
            Row(
                name=node.name,
                kind=node.kind,
                output_shape=_dims(found.shape),
                params=params.total,
                trainable_params=params.trainable,
                macs=found.macs,
                receptive_field=found.receptive_field,
                line=node.line,
                group=node.group,
                inputs=list(node.inputs),
            )
        )
    outputs = [_dims(figures[name].shape) for name in graph.outputs]
    total = sum(row.params for row in rows)
    weight_bytes = sum(
        node.spec.weight_bytes(figures[node.name].params) for node in graph.nodes if node.kind != "input"
    )
    trainable = sum(row.trainable_params for row in rows)
    return Report(
        name=graph.name,
        rows=rows,
        params=total,
        trainable_params=trainable,
        non_trainable_params=total - trainable,
        macs=sum(row.macs for row in rows),
        weight_bytes=weight_bytes,
        output_shape=outputs[0] if len(outputs) == 1 else outputs,
        groups={name: (kind, loc.line) for name, (kind, loc) in graph.groups.items()},
        file=model.file,
        group_summaries=summarize_groups(graph, rows),
        warnings=[str(w) for w in graph.warnings],
    )
