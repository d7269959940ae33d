"""Small result tables (ensemble members, compared runs) in the CLI's formats.

`kbuilder build` renders its own layer report; these tables are plainer: a header and rows of
text cells, written as a rich table, aligned plain text, markdown or CSV (JSON is the caller's).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table


def cell(value: Any) -> str:
    """A figure as a table shows it: floats with 4 decimals, None as '-'."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def render_table(
    title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]], fmt: str, *, notes: Sequence[str] = ()
) -> str:
    """The table in `fmt` (rich, plain, markdown or csv); notes are lines printed below it."""
    if fmt == "csv":  # for other programs: full precision, empty for missing
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(headers)
        writer.writerows([["" if v is None else v for v in row] for row in rows])
        return buffer.getvalue()
    cells = [[cell(v) for v in row] for row in rows]
    if fmt == "markdown":
        out = [f"### {title}", "", "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        out += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in cells]
        out += [""] + [f"- {note}" for note in notes] if notes else []
        return "\n".join(out) + "\n"
    if fmt == "rich":
        table = Table(title=title, title_justify="left")
        for header in headers:
            table.add_column(header)
        for row in cells:
            table.add_row(*row)
        needed = (
            sum(max([len(h)] + [len(r[i]) for r in cells]) + 3 for i, h in enumerate(headers)) + 1
        )  # cell padding and borders
        console = Console(record=True, width=max(100, needed))
        with console.capture() as capture:
            console.print(table)
            for note in notes:
                console.print(note, highlight=False, markup=False)
        return capture.get()
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]

    def line(items: Sequence[str]) -> str:
        return "  ".join(text.ljust(width) for text, width in zip(items, widths)).rstrip()

    rule = "-" * len(line(headers))
    return "\n".join([title, rule, line(headers), rule, *(line(r) for r in cells), rule, *notes]) + "\n"
