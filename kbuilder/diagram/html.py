"""A self-contained HTML page: dot's SVG inline, with groups that fold in the browser.

Clicking a group (its dashed frame) folds it: its boxes and inner arrows disappear and
one box labelled with the group's name and layer count covers its place; clicking that
box opens the group again. "Open levels" folds every group below a nesting level. The
layout is dot's and stays put (a folded group keeps its space), so nothing is laid out
in the browser; the page loads nothing from the network. Text that the browser's font
draws wider than dot measured it is squeezed into its box.
"""

from __future__ import annotations

import html
import json
import re

from kbuilder.diagram.dot import element_ids
from kbuilder.diagram.structure import Diagram

_PROLOG = re.compile(r"^.*?(?=<svg)", re.DOTALL)  # XML declaration, DOCTYPE, comments


def page_data(diagram: Diagram) -> dict:
    """What the script needs: each box's groups, each edge's ends, each group's nesting."""
    box_ids, group_ids = element_ids(diagram)
    groups: dict[str, dict] = {}
    for group, label in diagram.groups.items():
        groups[group_ids[group]] = {"name": group, "label": label, "layers": 0, "boxes": 0, "ancestors": []}
    for box in diagram.boxes:
        for depth, group in enumerate(box.group):
            entry = groups[group_ids[group]]
            entry["layers"] += box.layers
            entry["boxes"] += 1
            entry["ancestors"] = [group_ids[g] for g in box.group[:depth]]
    return {
        "name": diagram.name,
        "boxes": {
            box_ids[box.id]: {"name": box.id, "groups": [group_ids[g] for g in box.group]}
            for box in diagram.boxes
        },
        "edges": {f"e{index}": [box_ids[a], box_ids[b]] for index, (a, b) in enumerate(diagram.edges)},
        "groups": groups,
    }


def to_html(diagram: Diagram, svg: bytes) -> bytes:
    """The page for a diagram and the SVG that `dot` drew from its DOT text."""
    drawing = _PROLOG.sub("", svg.decode("utf-8"), count=1)
    data = json.dumps(page_data(diagram)).replace("</", "<\\/")  # cannot close the script tag
    levels = max((len(g["ancestors"]) for g in page_data(diagram)["groups"].values()), default=-1) + 1
    options = "".join(f'<option value="{n}">{n}</option>' for n in range(levels))
    counts = diagram.counts()
    title = html.escape(diagram.name)
    return _PAGE.format(
        title=title,
        drawing=drawing,
        data=data,
        options=options,
        script=_SCRIPT,
        style=_STYLE,
        summary=html.escape(f"{counts['layers']} layers, {counts['boxes']} boxes, {counts['groups']} groups"),
    ).encode("utf-8")


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title><style>{style}</style></head>
<body>
<header><strong>{title}</strong> <span>{summary}</span>
<button id="expand-all" type="button">Open all</button>
<label>Open levels <select id="levels"><option value="all">all</option>{options}</select></label>
<span id="visible"></span> <em>Click a group's frame to fold it, a folded box to open it.</em></header>
<main>{drawing}</main>
<script type="application/json" id="diagram-data">{data}</script>
<script>{script}</script>
</body></html>
"""

_STYLE = """
body { font-family: Helvetica, Arial, sans-serif; margin: 0; }
header { position: sticky; top: 0; background: #f8f9fa; padding: 6px 10px; border-bottom: 1px solid #dee2e6; }
header > * { margin-right: 12px; }
main { padding: 10px; }
g.cluster path, g.cluster polygon { pointer-events: all; cursor: zoom-out; }
g.cluster:hover path, g.cluster:hover polygon { stroke: #1971c2; }
g.folded { cursor: zoom-in; }
g.folded rect { fill: #c5f6fa; stroke: #000; stroke-width: 2; }
"""

_SCRIPT = r"""
(function () {
  const data = JSON.parse(document.getElementById('diagram-data').textContent);
  const svg = document.querySelector('main svg');
  const root = svg.querySelector('g.graph');
  const NS = 'http://www.w3.org/2000/svg';
  const folded = new Set();
  const overlays = {};
  // dot sized each box for Helvetica's widths; where the browser draws a wider face
  // (Chromium on Linux falls back to DejaVu Sans), a line is squeezed to fit its box.
  for (const node of svg.querySelectorAll('g.node')) {
    const shape = node.querySelector('path, polygon, ellipse');
    if (!shape) continue;
    const room = shape.getBBox().width - 8;  // 4 px clear of each side
    for (const text of node.querySelectorAll('text')) {
      if (text.getComputedTextLength() > room) {
        text.setAttribute('textLength', room);
        text.setAttribute('lengthAdjust', 'spacingAndGlyphs');
      }
    }
  }
  const show = (id, on) => { const el = document.getElementById(id); if (el) el.style.display = on ? '' : 'none'; };
  // Each group's place, measured while everything is shown.
  for (const [cid, group] of Object.entries(data.groups)) {
    const frame = document.getElementById(cid);
    if (!frame) continue;
    const box = frame.getBBox();
    const g = document.createElementNS(NS, 'g');
    g.setAttribute('class', 'folded');
    g.setAttribute('data-group', group.name);
    g.style.display = 'none';
    const rect = document.createElementNS(NS, 'rect');
    const place = [['x', box.x], ['y', box.y], ['width', box.width], ['height', box.height], ['rx', 6]];
    for (const [k, v] of place) rect.setAttribute(k, v);
    g.appendChild(rect);
    const lines = [group.label, group.layers + ' layers'];
    lines.forEach((line, i) => {
      const text = document.createElementNS(NS, 'text');
      text.setAttribute('x', box.x + box.width / 2);
      text.setAttribute('y', box.y + Math.min(box.height / 2, 24) + (i - 0.5) * 14);
      text.setAttribute('text-anchor', 'middle');
      text.setAttribute('font-size', '11');
      text.textContent = line;
      g.appendChild(text);
    });
    const title = document.createElementNS(NS, 'title');
    title.textContent = group.name;
    g.appendChild(title);
    g.addEventListener('click', () => { folded.delete(cid); refresh(); });
    root.appendChild(g);
    overlays[cid] = g;
    frame.addEventListener('click', () => { folded.add(cid); refresh(); });
  }
  function refresh() {
    let visible = 0;
    for (const [nid, box] of Object.entries(data.boxes)) {
      const on = !box.groups.some((g) => folded.has(g));
      show(nid, on);
      visible += on ? 1 : 0;
    }
    for (const [eid, [a, b]] of Object.entries(data.edges)) {
      const ga = data.boxes[a].groups, gb = data.boxes[b].groups;
      show(eid, !ga.some((g) => folded.has(g) && gb.includes(g)));
    }
    for (const [cid, group] of Object.entries(data.groups)) {
      const under = group.ancestors.some((g) => folded.has(g));
      show(cid, !under && !folded.has(cid));
      if (overlays[cid]) overlays[cid].style.display = folded.has(cid) && !under ? '' : 'none';
      visible += folded.has(cid) && !under ? 1 : 0;
    }
    document.getElementById('visible').textContent = visible + ' boxes shown';
  }
  document.getElementById('expand-all').addEventListener('click', () => {
    folded.clear(); document.getElementById('levels').value = 'all'; refresh();
  });
  document.getElementById('levels').addEventListener('change', (event) => {
    folded.clear();
    if (event.target.value !== 'all') {
      const level = Number(event.target.value);
      for (const [cid, group] of Object.entries(data.groups)) if (group.ancestors.length >= level) folded.add(cid);
    }
    refresh();
  });
  refresh();
})();
"""
