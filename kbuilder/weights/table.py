"""The load plan for people and programs: one row per weighted spec layer (its status: loaded,
new or skipped; the source layer and tensors it came from; its weights' shapes; how it was
matched), and a summary line.
"""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.table import Table

from kbuilder.weights.plan import LayerLoad, LoadPlan

COLUMNS = ("layer", "status", "source", "shapes", "how")
STATUS_STYLE = {"loaded": "green", "new": "yellow", "skipped": "dim"}


def summary(plan: LoadPlan) -> str:
    counts = plan.counts()
    return (
        f"weights from {plan.source}: {counts['loaded']} layers loaded, {counts['new']} new, "
        f"{counts['skipped']} skipped (matched by {plan.match})"
    )


def _cells(row: LayerLoad) -> dict[str, str]:
    source = row.source_layer or (", ".join(row.sources) if row.sources else "-")
    if row.source_layer and row.sources:
        source += f" ({len(row.sources)} tensor{'s' * (len(row.sources) != 1)})"
    shapes = " ".join(str(tuple(s)) for s in row.shapes)
    return {"layer": row.layer, "status": row.status, "source": source, "shapes": shapes, "how": row.note}


def plan_json(plan: LoadPlan) -> dict[str, Any]:
    return {
        "source": plan.source,
        "layout": plan.layout,
        "match": plan.match,
        "counts": plan.counts(),
        "summary": summary(plan),
        "layers": [
            {
                "layer": row.layer,
                "status": row.status,
                "source_layer": row.source_layer or None,
                "source_tensors": list(row.sources),
                "shapes": [list(s) for s in row.shapes],
                "note": row.note,
            }
            for row in plan.rows
        ],
    }


def render_plan(plan: LoadPlan, fmt: str = "plain", width: int | None = None) -> str:
    """The plan as text: rich (a terminal), plain, markdown or json."""
    if fmt == "json":
        return json.dumps(plan_json(plan), indent=2) + "\n"
    rows = [_cells(row) for row in plan.rows]
    if fmt == "rich":
        table = Table(title=f"weights  ({plan.source})", title_justify="left")
        for column in COLUMNS:
            table.add_column(column, overflow="fold")
        for cells in rows:
            table.add_row(*(cells[c] for c in COLUMNS), style=STATUS_STYLE[cells["status"]])
        console = Console(record=True, width=width or 120)
        with console.capture() as capture:
            console.print(table)
            console.print(summary(plan), highlight=False)
        return capture.get()
    if fmt == "markdown":
        out = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
        out += ["| " + " | ".join(cells[c] for c in COLUMNS) + " |" for cells in rows]
        return "\n".join([*out, "", summary(plan)]) + "\n"
    widths = {c: max([len(c), *(len(cells[c]) for cells in rows)]) for c in COLUMNS}
    lines = ["  ".join(c.ljust(widths[c]) for c in COLUMNS).rstrip()]
    lines += ["  ".join(cells[c].ljust(widths[c]) for c in COLUMNS).rstrip() for cells in rows]
    return "\n".join([*lines, summary(plan)]) + "\n"
