"""One summary per composite (block, repeat, branches, residual, inception): the group's
output shape and receptive field (those of the node it resolves to) and the parameter
and MAC subtotals of every layer inside it. The table shows them on the group's row."""

from __future__ import annotations

from dataclasses import dataclass

from kbuilder.graph.receptive import ReceptiveField


@dataclass
class GroupSummary:
    name: str
    kind: str
    line: int | None
    output: str  # the layer whose output is the group's output
    output_shape: list | None  # None when that layer was not built (a partial table)
    params: int
    trainable_params: int
    macs: int
    receptive_field: ReceptiveField | None

    def as_json(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "line": self.line,
            "output": self.output,
            "output_shape": self.output_shape,
            "params": self.params,
            "trainable_params": self.trainable_params,
            "macs": self.macs,
            "receptive_field": self.receptive_field.as_json() if self.receptive_field else None,
        }


def summarize_groups(graph, rows: list) -> dict[str, GroupSummary]:
    """Summaries of every composite of `graph`, keyed by composite name, from its rows."""
    by_name = {row.name: row for row in rows}
    summaries = {}
    for name, (kind, location) in graph.groups.items():
        members = [row for row in rows if name in row.group]
        output = graph.resolve(name)
        out_row = by_name.get(output)
        summaries[name] = GroupSummary(
            name=name,
            kind=kind,
            line=location.line,
            output=output,
            output_shape=out_row.output_shape if out_row else None,
            params=sum(row.params for row in members),
            trainable_params=sum(row.trainable_params for row in members),
            macs=sum(row.macs for row in members),
            receptive_field=out_row.receptive_field if out_row else None,
        )
    return summaries
