"""Small result tables (ensemble members, compared runs) in the CLI's formats.

`kbuilder build` renders its own layer report; these tables are plainer: a header and rows of
text cells, written as a rich table, aligned plain text, markdown or CSV (JSON is the caller's).
"""

from __future__ import annotations

import csv
import io
import itertools
import textwrap
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


WRAP_AT = 20  # a longer cell (a description, a path) wraps onto several lines


def _plain_width(headers: Sequence[str], cells: Sequence[Sequence[str]]) -> int:
    """The table's line length with long cells wrapped (rich's borders: three per column)."""
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    widths = widths[:1] + [min(WRAP_AT, w) for w in widths[1:]]  # the first column names rows: kept whole
    return sum(widths) + 3 * len(widths) + 1


def fit(
    headers: Sequence[str], cells: Sequence[Sequence[str]], width: int
) -> list[tuple[list[str], list[list[str]]]]:
    """The table as blocks that fit `width` characters: as it is when it fits; else transposed
    (one row per column, the first column's cells as headers); else the transposed table's
    columns in consecutive blocks, each repeating the first. Cells over WRAP_AT characters
    count as WRAP_AT: the renderers wrap them."""
    if _plain_width(headers, cells) <= width:
        return [(list(headers), [list(r) for r in cells])]
    t_headers = [headers[0], *(r[0] for r in cells)]
    t_cells = [[h, *(r[i] for r in cells)] for i, h in enumerate(headers) if i > 0]
    blocks: list[tuple[list[str], list[list[str]]]] = []
    start = 1
    while start < len(t_headers):
        end = start + 1
        while (
            end < len(t_headers)
            and _plain_width(
                [t_headers[0], *t_headers[start : end + 1]], [[r[0], *r[start : end + 1]] for r in t_cells]
            )
            <= width
        ):
            end += 1
        blocks.append(([t_headers[0], *t_headers[start:end]], [[r[0], *r[start:end]] for r in t_cells]))
        start = end
    return blocks


def render_table(
    title: str,
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    fmt: str,
    *,
    notes: Sequence[str] = (),
    width: int | None = None,
) -> str:
    """The table in `fmt` (rich, plain, markdown or csv); notes are lines printed below it.
    With `width`, rich and plain tables fit it (see `fit`)."""
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
    if width is None or fmt not in ("rich", "plain"):
        return _render(title, headers, cells, fmt, notes, width)
    notes = [line for note in notes for line in textwrap.wrap(note, width, subsequent_indent="  ")]
    blocks = fit(headers, cells, width)
    if len(blocks) == 1:
        return _render(title, blocks[0][0], blocks[0][1], fmt, notes, width)
    parts = [
        _render(f"{title} ({i + 1}/{len(blocks)})", h, c, fmt, (), width) for i, (h, c) in enumerate(blocks)
    ]
    return "".join(parts) + "".join(f"{note}\n" for note in notes)


def _render(
    title: str,
    headers: Sequence[str],
    cells: Sequence[Sequence[str]],
    fmt: str,
    notes: Sequence[str],
    width: int | None,
) -> str:
    """A rich or plain table of text cells (rich within `width` when given)."""
    if fmt == "rich":
        table = Table(title=title, title_justify="left")
        for index, header in enumerate(headers):
            longest = max([len(header)] + [len(r[index]) for r in cells])
            # The first column names the row (a run, a setting path): whole, not cut short.
            table.add_column(header, min_width=min(longest, (width or 200) // 2) if index == 0 else None)
        for row in cells:
            table.add_row(*row)
        needed = (
            sum(max([len(h)] + [len(r[i]) for r in cells]) + 3 for i, h in enumerate(headers)) + 1
        )  # cell padding and borders
        console = Console(record=True, width=width or max(100, needed))
        with console.capture() as capture:
            console.print(table)
            for note in notes:
                console.print(note, highlight=False, markup=False)
        return capture.get()
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    while width is not None and sum(widths) + 2 * len(widths) > width and max(widths) > WRAP_AT:
        widths[widths.index(max(widths))] -= 1  # the widest column wraps first

    def lines(items: Sequence[str]) -> list[str]:
        wrapped = [textwrap.wrap(text, w) or [""] for text, w in zip(items, widths)]
        return [
            "  ".join(part.ljust(w) for part, w in zip(parts, widths)).rstrip()
            for parts in itertools.zip_longest(*wrapped, fillvalue="")
        ]

    head = lines(headers)
    rule = "-" * max(len(text) for text in head)
    body = [text for row in cells for text in lines(row)]
    return "\n".join([title, rule, *head, rule, *body, rule, *notes]) + "\n"
