"""Renderers of a Report: rich table (terminal), plain text (pipes), markdown, JSON, CSV.

Every renderer takes `depth` (rows nested deeper than that many groups fold into their
group's subtotal row) and `width` (the terminal's columns: rich and plain leave out
columns, kbuilder.report.cells.DROP_ORDER first, until the table fits; None: no limit)."""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from collections.abc import Callable

from rich.console import Console
from rich.table import Table

from kbuilder.report.cells import (
    COLUMNS,
    RIGHT,
    columns_of,
    exact,
    fit_columns,
    human,
    natural_widths,
    shape_text,
    table_lines,
)
from kbuilder.report.rows import Report

__all__ = ["COLUMNS", "RENDERERS", "terminal_width"]


def terminal_width() -> int | None:
    """Columns to fit: $COLUMNS when set, else the terminal's; None when stdout is no terminal."""
    value = os.environ.get("COLUMNS", "")
    if value.isdigit() and int(value) > 0:
        return int(value)
    try:
        return os.get_terminal_size(sys.stdout.fileno()).columns if sys.stdout.isatty() else None
    except (OSError, ValueError, AttributeError):
        return None


def _totals(report: Report, count: Callable[[int], str] = exact, width: int | None = None) -> list[str]:
    """The totals, exact (with human units beside MACs where `count` gives them); a line
    wider than `width` is split into its parts."""
    mb = report.weight_bytes / 2**20
    macs = f" ({count(report.macs)})" if count(report.macs) != exact(report.macs) else ""
    lines = [
        [
            f"Total params: {report.params:,}",
            f"(trainable {report.trainable_params:,}, non-trainable {report.non_trainable_params:,})",
        ],
        [
            f"MACs per sample: {report.macs:,}{macs}",
            f"Weight memory: {mb:,.2f} MiB",
            f"Output shape: {shape_text(report.output_shape)}",
        ],
    ]
    out: list[str] = []
    for parts in lines:
        joined = ("  " if parts[1].startswith("(") else "   ").join(parts)
        out += parts if width is not None and len(joined) > width else [joined]
    return out


def _left_out(dropped: list[str], width: int | None) -> list[str]:
    if not dropped:
        return []
    return [f"(left out to fit {width} columns: {', '.join(dropped)})"]


def render_rich(report: Report, depth: int | None = None, width: int | None = None) -> str:
    lines = table_lines(report, human, depth)
    columns, dropped = fit_columns(columns_of(lines), lines, width, lambda n: 3 * n + 1)
    table = Table(title=f"{report.name}  ({report.file})", title_justify="left")
    for col in columns:
        table.add_column(col, justify="right" if col in RIGHT else "left", overflow="fold")
    for cells in lines:
        style = "bold cyan" if cells["Layer"].rstrip().endswith("/") else None  # a group's row
        table.add_row(*(cells[c] for c in columns), style=style)
    natural = sum(natural_widths(columns, lines).values()) + 3 * len(columns) + 1
    console = Console(record=True, width=width or max(80, natural))
    with console.capture() as capture:
        console.print(table)
        for line in _totals(report, human, width) + _left_out(dropped, width):
            console.print(line, highlight=False)
    return capture.get()


def render_plain(report: Report, depth: int | None = None, width: int | None = None) -> str:
    lines = table_lines(report, human, depth)
    columns, dropped = fit_columns(columns_of(lines), lines, width, lambda n: 2 * (n - 1))
    widths = natural_widths(columns, lines)

    def fmt(cells: dict[str, str]) -> str:
        return "  ".join(
            cells[c].rjust(widths[c]) if c in RIGHT else cells[c].ljust(widths[c]) for c in columns
        ).rstrip()

    header = fmt({c: c for c in columns})
    rule = "-" * len(header)
    out = [f"Model: {report.name}  ({report.file})", rule, header, rule]
    out += [fmt(cells) for cells in lines]
    out += [rule] + _totals(report, human, width) + _left_out(dropped, width)
    return "\n".join(out) + "\n"


def render_markdown(report: Report, depth: int | None = None, width: int | None = None) -> str:
    def esc(text: str) -> str:
        return text.replace("|", "\\|").replace(" ", "&nbsp;", len(text) - len(text.lstrip(" ")))

    lines = table_lines(report, exact, depth)
    columns = columns_of(lines)
    out = [f"### {report.name}", "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    out += ["| " + " | ".join(esc(cells[c]) for c in columns) + " |" for cells in lines]
    out += ["", *(f"- {line}" for line in _totals(report))]
    return "\n".join(out) + "\n"


def render_json(report: Report, depth: int | None = None, width: int | None = None) -> str:
    """Every row and group, whatever `depth`: JSON is for programs."""
    return json.dumps(report.as_json(), indent=2) + "\n"


def render_csv(report: Report, depth: int | None = None, width: int | None = None) -> str:
    """Every row, exact integers, whatever `depth` and `width`."""
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
            "inputs",
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
                " ".join(row.inputs),
            ]
        )
    return buffer.getvalue()


RENDERERS: dict[str, Callable[..., str]] = {
    "rich": render_rich,
    "plain": render_plain,
    "markdown": render_markdown,
    "json": render_json,
    "csv": render_csv,
}
