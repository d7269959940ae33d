"""Renderers of a Report: rich table (terminal), plain text (pipes), markdown, JSON, CSV."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable

from rich.console import Console
from rich.table import Table

from kbuilder.graph.graph import SEP
from kbuilder.report.rows import Report, Row

COLUMNS = ("Layer", "Kind", "Output shape", "Params", "MACs", "Receptive field", "Line")


def _shape(shape) -> str:
    if shape and isinstance(shape[0], list):
        return ", ".join(_shape(s) for s in shape)
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + ")"


def _table_lines(report: Report) -> list[tuple[str, ...] | str]:
    """Cells per row, with a header line each time a block (composite) is entered."""
    lines: list[tuple[str, ...] | str] = []
    current: tuple[str, ...] = ()
    for row in report.rows:
        common = 0
        while common < min(len(current), len(row.group)) and current[common] == row.group[common]:
            common += 1
        for depth in range(common, len(row.group)):
            name = row.group[depth]
            kind, line = report.groups.get(name, ("block", None))
            parent = row.group[depth - 1] if depth else ""
            short = name[len(parent) + 1 :] if parent and name.startswith(parent + SEP) else name
            lines.append(_group_cells(report, name, "  " * depth + f"{short}/", kind, line))
        current = row.group
        lines.append(_cells(row, len(row.group)))
    return lines


def _group_cells(report: Report, name: str, label: str, kind: str, line) -> tuple[str, ...]:
    """A group's header row: its output shape, its parameter and MAC subtotals."""
    summary = report.group_summaries.get(name)
    if summary is None:
        return (label, kind, "", "", "", "", str(line or ""))
    return (
        label,
        kind,
        _shape(summary.output_shape) if summary.output_shape is not None else "",
        f"{summary.params:,}",
        f"{summary.macs:,}",
        summary.receptive_field.text() if summary.receptive_field else "-",
        str(line or ""),
    )


def _cells(row: Row, depth: int = 0) -> tuple[str, ...]:
    short = (
        row.name[len(row.group[-1]) + 1 :]
        if row.group and row.name.startswith(row.group[-1] + SEP)
        else row.name
    )
    return (
        "  " * depth + short,
        row.kind,
        _shape(row.output_shape),
        f"{row.params:,}",
        f"{row.macs:,}",
        row.receptive_field.text() if row.receptive_field else "-",
        str(row.line or ""),
    )


def _totals(report: Report) -> list[str]:
    mb = report.weight_bytes / 2**20
    return [
        f"Total params: {report.params:,}  (trainable {report.trainable_params:,}, non-trainable {report.non_trainable_params:,})",
        f"MACs per sample: {report.macs:,}   Weight memory: {mb:,.2f} MiB   Output shape: {_shape(report.output_shape)}",
    ]


def render_rich(report: Report) -> str:
    table = Table(title=f"{report.name}  ({report.file})", title_justify="left")
    for col in COLUMNS:
        table.add_column(
            col, justify="right" if col in ("Params", "MACs", "Line") else "left", no_wrap=col == "Layer"
        )
    lines = _table_lines(report)
    for cells in lines:
        style = "bold cyan" if cells[0].rstrip().endswith("/") else None  # a block header
        table.add_row(*cells, style=style)
    console = Console(record=True, width=max(120, max(len(c[0]) for c in lines) + 90))
    with console.capture() as capture:
        console.print(table)
        for line in _totals(report):
            console.print(line, highlight=False)
    return capture.get()


def render_plain(report: Report) -> str:
    lines = _table_lines(report)
    rows = [COLUMNS] + lines
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    right = {3, 4, 6}

    def fmt(cells) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))
        ).rstrip()

    rule = "-" * len(fmt(COLUMNS))
    out = [f"Model: {report.name}  ({report.file})", rule, fmt(COLUMNS), rule]
    out += [fmt(cells) for cells in lines]
    out += [rule] + _totals(report)
    return "\n".join(out) + "\n"


def render_markdown(report: Report) -> str:
    def esc(text: str) -> str:
        return text.replace("|", "\\|").replace(" ", "&nbsp;", len(text) - len(text.lstrip(" ")))

    out = [f"### {report.name}", "", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    out += ["| " + " | ".join(esc(c) for c in cells) + " |" for cells in _table_lines(report)]
    out += ["", *(f"- {line}" for line in _totals(report))]
    return "\n".join(out) + "\n"


def render_json(report: Report) -> str:
    return json.dumps(report.as_json(), indent=2) + "\n"


def render_csv(report: Report) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        [
            "name",
            "kind",
            "group",
            "output_shape",
            "params",
            "trainable_params",
            "macs",
            "receptive_field",
            "line",
        ]
    )
    for row in report.rows:
        writer.writerow(
            [
                row.name,
                row.kind,
                "/".join(row.group),
                "x".join("?" if d is None else str(d) for d in row.output_shape),
                row.params,
                row.trainable_params,
                row.macs,
                row.receptive_field.text() if row.receptive_field else "",
                row.line or "",
            ]
        )
    return buffer.getvalue()


RENDERERS: dict[str, Callable[[Report], str]] = {
    "rich": render_rich,
    "plain": render_plain,
    "markdown": render_markdown,
    "json": render_json,
    "csv": render_csv,
}
