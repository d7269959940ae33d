"""The load plan as text and JSON (no Keras): one row per weighted layer and a summary line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kbuilder.weights.plan import LayerLoad, LoadPlan
from kbuilder.weights.table import render_plan

PLAN = LoadPlan(
    "runs/x/best.keras",
    "keras",
    "name",
    [
        LayerLoad(
            "c1",
            "loaded",
            ("c1/vars/0", "c1/vars/1"),
            (np.ones((3, 3, 1, 4)), np.ones(4)),
            "name",
            "c1",
            ((3, 3, 1, 4), (4,)),
        ),
        LayerLoad("head", "new", note="excluded", shapes=((16, 5), (5,))),
        LayerLoad("bn", "skipped", note="not included", shapes=((4,),) * 4),
    ],
)
SUMMARY = "weights from runs/x/best.keras: 1 layers loaded, 1 new, 1 skipped (matched by name)"


@pytest.mark.parametrize("fmt", ["plain", "rich", "markdown"])
def test_every_text_format_shows_each_row_and_the_summary(fmt):
    text = render_plan(PLAN, fmt)
    assert SUMMARY in text
    for cells in (
        ["c1", "loaded", "c1 (2 tensors)", "(3, 3, 1, 4) (4,)"],
        ["head", "new", "(16, 5) (5,)", "excluded"],
    ):
        assert all(cell in text for cell in cells), (fmt, cells)
    assert "not included" in text


def test_json_lists_status_sources_and_shapes():
    data = json.loads(render_plan(PLAN, "json"))
    assert data["counts"] == {"loaded": 1, "new": 1, "skipped": 1} and data["summary"] == SUMMARY
    first = data["layers"][0]
    assert first == {
        "layer": "c1",
        "status": "loaded",
        "source_layer": "c1",
        "source_tensors": ["c1/vars/0", "c1/vars/1"],
        "shapes": [[3, 3, 1, 4], [4]],
        "note": "name",
    }
    assert data["layers"][1]["source_layer"] is None and data["layers"][1]["source_tensors"] == []
