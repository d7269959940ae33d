"""A Report as table cells: which rows show (`depth`), what each cell says, and which
columns fit a terminal's width. Shared by every text renderer (kbuilder.report.render).

The terminal formats (rich, plain) show large counts in human units (`3.86 G`); markdown,
JSON and CSV keep exact integers. A layer's row shows its full name, the one
`model.get_layer` takes; a group's row shows its name inside its parent, ending in `/`,
indented by its nesting."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from kbuilder.graph.graph import SEP
from kbuilder.report.rows import Report, Row

COLUMNS = ("Layer", "Kind", "Output shape", "Params", "MACs", "Receptive field", "Connected to", "Line")
RIGHT = frozenset({"Params", "MACs", "Line"})
# Left out first when a table is wider than the terminal, in this order.
DROP_ORDER = ("Line", "Receptive field", "Connected to", "Kind")
_UNITS = ((10**12, "T"), (10**9, "G"), (10**6, "M"), (10**3, "K"))


def exact(count: int) -> str:
    return f"{count:,}"


def human(count: int) -> str:
    """`3857973248` -> `3.86 G`: three significant digits; counts under 1,000 as they are."""
    for size, unit in _UNITS:
        if abs(count) >= max(1000, size * 0.9995):  # 999,500 reads 1.00 M, not 1000 K
            value = count / size
            digits = 2 if abs(value) < 9.995 else 1 if abs(value) < 99.95 else 0
            return f"{value:.{digits}f} {unit}"
    return str(count)


def shape_text(shape) -> str:
    if shape and isinstance(shape[0], list):
        return ", ".join(shape_text(s) for s in shape)
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + ")"


def columns_of(lines: list[dict[str, str]]) -> tuple[str, ...]:
    """Every column, less "Connected to" when no row shown has several inputs."""
    merges = any(cells["Connected to"] for cells in lines)
    return tuple(c for c in COLUMNS if c != "Connected to" or merges)


def table_lines(
    report: Report, count: Callable[[int], str] = exact, depth: int | None = None
) -> list[dict[str, str]]:
    """Cells per shown row (column -> text), with a row each time a group is entered. With
    `depth`, layers inside more than `depth` groups are left out: the subtotal row of the
    group at that depth stands for them (torchinfo's `depth`)."""
    lines: list[dict[str, str]] = []
    current: tuple[str, ...] = ()
    for row in report.rows:
        common = 0
        while common < min(len(current), len(row.group)) and current[common] == row.group[common]:
            common += 1
        for level in range(common, len(row.group)):
            if depth is not None and level > depth:
                break
            name = row.group[level]
            parent = row.group[level - 1] if level else ""
            short = name[len(parent) + 1 :] if parent and name.startswith(parent + SEP) else name
            lines.append(_group_cells(report, name, "  " * level + f"{short}/", count))
        current = row.group
        if depth is None or len(row.group) <= depth:
            lines.append(_cells(row, count))
    return lines


def _group_cells(report: Report, name: str, label: str, count: Callable[[int], str]) -> dict[str, str]:
    """A group's own row: its output shape, its parameter and MAC subtotals."""
    kind, line = report.groups.get(name, ("block", None))
    cells = dict.fromkeys(COLUMNS, "")
    cells.update({"Layer": label, "Kind": kind, "Line": str(line or "")})
    summary = report.group_summaries.get(name)
    if summary is not None:
        cells["Output shape"] = shape_text(summary.output_shape) if summary.output_shape is not None else ""
        cells["Params"] = count(summary.params)
        cells["MACs"] = count(summary.macs)
        cells["Receptive field"] = summary.receptive_field.text() if summary.receptive_field else "-"
    return cells


def _cells(row: Row, count: Callable[[int], str]) -> dict[str, str]:
    # The full name is not indented: it spells its groups out already, and ResNet-50's
    # `conv2_x-blocks-0-block-unit-conv1` under four levels would not fit 80 columns.
    return {
        "Layer": row.name,
        "Kind": row.kind,
        "Output shape": shape_text(row.output_shape),
        "Params": count(row.params),
        "MACs": count(row.macs),
        "Receptive field": row.receptive_field.text() if row.receptive_field else "-",
        "Connected to": ", ".join(row.inputs) if len(row.inputs) > 1 else "",
        "Line": str(row.line or ""),
    }


def natural_widths(columns: Sequence[str], lines: list[dict[str, str]]) -> dict[str, int]:
    return {c: max([len(c), *(len(cells[c]) for cells in lines)]) for c in columns}


def fit_columns(
    columns: Sequence[str], lines: list[dict[str, str]], width: int | None, border: Callable[[int], int]
) -> tuple[tuple[str, ...], list[str]]:
    """The columns that fit `width` characters (None: all), dropping DROP_ORDER's first;
    `border(n)` is what n columns add to the sum of their widths. Also the dropped ones."""
    kept, dropped = list(columns), []
    widths = natural_widths(columns, lines)
    for name in DROP_ORDER:
        if width is None or sum(widths[c] for c in kept) + border(len(kept)) <= width:
            break
        if name in kept:
            kept.remove(name)
            dropped.append(name)
    return tuple(kept), dropped
