"""A vector PDF from `dot`'s layout: replay its xdot drawing operations with matplotlib.

`graphviz-pure` lays the graph out but has no PDF writer. Its `-Tjson` output carries,
for the graph, every cluster, node and edge, the exact drawing operations (`_draw_`,
`_ldraw_`, arrowheads...) that its SVG writer also follows; drawing them with matplotlib's
PDF backend gives the same picture as the SVG, as vectors, with no system package.
Coordinates are points with y upwards, as in a PDF page.
"""

from __future__ import annotations

import io
import json
from functools import lru_cache
from typing import Any

from matplotlib.collections import PatchCollection
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.patches import Ellipse, PathPatch, Polygon
from matplotlib.path import Path
from matplotlib.textpath import text_to_path

from kbuilder.errors import RuntimeFailure

DRAW_KEYS = ("_draw_", "_ldraw_", "_hdraw_", "_tdraw_", "_hldraw_", "_tldraw_")
MAX_PAGE_POINTS = 14400
_ALIGN = {"l": "left", "c": "center", "r": "right"}


class Pen:
    """The drawing state that xdot operations change and later shapes use."""

    def __init__(self) -> None:
        self.stroke, self.fill = "#000000", "#000000"
        self.width, self.dash = 1.0, "solid"
        self.font_size, self.font_face = 14.0, "Helvetica"

    def style(self, style: str) -> None:
        if style in ("dashed", "dotted", "solid"):
            self.dash = style
        elif style == "bold":
            self.width = 2.0
        elif style.startswith("setlinewidth(") and style.endswith(")"):
            try:
                self.width = float(style[len("setlinewidth(") : -1])
            except ValueError:
                pass  # a malformed width leaves the pen as it was, as Graphviz does


def colour(value: str) -> Any:
    try:
        return to_rgba(value)
    except ValueError:
        return (0.0, 0.0, 0.0, 1.0)  # an X11 colour name matplotlib does not know


@lru_cache(maxsize=4096)
def _unit_width(text: str, family: str) -> float:
    """The text's width at 1 pt (widths scale with the size; kinds repeat, so cached)."""
    prop = FontProperties(family=[family], size=100)
    drawn, _, _ = text_to_path.get_text_width_height_descent(text, prop, ismath=False)
    return drawn / 100


def _fitted_size(text: str, size: float, width: float, family: str) -> float:
    """Shrink the font until the text fits the width `dot` reserved for it (its font
    metrics are Helvetica's; matplotlib's default sans-serif is a little wider)."""
    if not text.strip() or width <= 0:
        return size
    drawn = _unit_width(text, family) * size
    return size * min(1.0, width / drawn) if drawn > 0 else size


def draw_operations(
    axes, operations: list[dict], pen: Pen, fill_curves: bool, patches: list, scale: float = 1.0
) -> None:
    """Replay one list of xdot operations: shapes go to `patches` (added to the axes in
    one collection, far faster than one by one), text straight onto the axes."""
    for op in operations:
        code = op.get("op")
        line = {"edgecolor": colour(pen.stroke), "linewidth": pen.width * scale, "linestyle": pen.dash}
        if code == "c":
            pen.stroke = op.get("color", pen.stroke)
        elif code == "C":
            pen.fill = op.get("color", pen.fill)
        elif code == "S":
            pen.style(op.get("style", ""))
        elif code == "F":
            pen.font_size, pen.font_face = float(op.get("size", pen.font_size)), op.get("face", pen.font_face)
        elif code in ("P", "p", "L"):
            points = op["points"]
            filled = code == "P"
            patches.append(
                Polygon(points, closed=code != "L", facecolor=colour(pen.fill) if filled else "none", **line)
            )
        elif code in ("B", "b"):
            points = op["points"]
            codes = [Path.MOVETO] + [Path.CURVE4] * (len(points) - 1)
            patches.append(
                PathPatch(Path(points, codes), facecolor=colour(pen.fill) if fill_curves else "none", **line)
            )
        elif code in ("E", "e"):
            cx, cy, rx, ry = op["rect"]
            filled = code == "E"
            patches.append(
                Ellipse((cx, cy), 2 * rx, 2 * ry, facecolor=colour(pen.fill) if filled else "none", **line)
            )
        elif code == "T":
            family = "serif" if "Times" in pen.font_face else "sans-serif"
            size = _fitted_size(op["text"], pen.font_size, float(op.get("width", 0)), family)
            x, y = op["pt"]
            axes.text(
                x,
                y,
                op["text"],
                fontsize=size * scale,
                family=family,
                color=colour(pen.stroke),
                parse_math=False,
                ha=_ALIGN.get(op.get("align", "c"), "center"),
                va="baseline",
            )
        # Other operations (gradients, images, font flags) do not occur in our diagrams.


def _is_node(item: dict) -> bool:
    """Whether a layout object is a node. graphviz-pure 0.2.2 swaps xdot's `b` (filled)
    and `B` (outline) curve codes, so a curve's fill is decided by what it belongs to:
    kbuilder fills every node and no cluster or edge (see kbuilder.diagram.dot)."""
    return "tail" not in item and "nodes" not in item and not str(item.get("name", "")).startswith("cluster")


def xdot_figure(layout_json: bytes):
    """A matplotlib Figure drawing the JSON layout that `dot -Tjson` wrote (no pyplot:
    nothing global changes, no window opens)."""
    try:
        layout = json.loads(layout_json)
        x0, y0, x1, y1 = (float(v) for v in layout["bb"].split(","))
    except (ValueError, KeyError) as exc:
        raise RuntimeFailure(f"cannot read the layout that graphviz-pure wrote: {exc}") from None
    width, height = max(x1 - x0, 1.0), max(y1 - y0, 1.0)
    # PDF pages end at 200 inches (14,400 pt) a side; a longer drawing is scaled to fit.
    scale = min(1.0, MAX_PAGE_POINTS / max(width, height))
    figure = Figure(figsize=(width * scale / 72, height * scale / 72))
    axes = figure.add_axes((0, 0, 1, 1))
    axes.set_xlim(x0, x1)
    axes.set_ylim(y0, y1)
    axes.set_axis_off()
    # The graph first, then clusters and nodes (in layout order), then edges on top.
    patches: list = []
    for item in [layout] + layout.get("objects", []) + layout.get("edges", []):
        pen = Pen()
        for key in DRAW_KEYS:
            draw_operations(axes, item.get(key, []), pen, key == "_draw_" and _is_node(item), patches, scale)
    axes.add_collection(PatchCollection(patches, match_original=True, zorder=1), autolim=False)
    for text in axes.texts:
        text.set_zorder(2)  # labels above every shape
    return figure


def xdot_to_pdf(layout_json: bytes) -> bytes:
    """PDF bytes for the JSON layout that `dot -Tjson` wrote."""
    buffer = io.BytesIO()
    xdot_figure(layout_json).savefig(buffer, format="pdf")
    return buffer.getvalue()
