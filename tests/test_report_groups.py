"""Group rows of the table (block, repeat, branches, residual): the group's output shape
and its parameter and MAC subtotals, in every format."""

from __future__ import annotations

import json

import pytest

from kbuilder import api
from kbuilder.report import RENDERERS
from kbuilder.spec import loads_spec

SPEC = """name: groups
inputs:
  x: {shape: [8, 8, 3]}
blocks:
  unit:
    params: {filters: null}
    layers:
      - residual:
          name: res
          shortcut: projection
          projection_batch_norm: false
          layers:
            - conv2d: {filters: "${filters}", kernel_size: 3, padding: same}
layers:
  - repeat:
      name: stack
      times: 2
      layers:
        - block: {use: unit, name: u, args: {filters: 4}}
  - branches:
      name: fork
      paths:
        a: [{conv2d: {filters: 2, kernel_size: 1}}]
        b: []
  - global_average_pooling2d
"""


@pytest.fixture(scope="module")
def report():
    return api.report(api.build(loads_spec(SPEC, file="groups.yaml")))


def test_group_summaries_add_up(report):
    g = report.group_summaries
    # unit 0: conv 3*3*3*4+4 = 112, projection 3*4+4 = 16; unit 1: conv 3*3*4*4+4 = 148, projection 4*4+4 = 20
    assert g["stack-0-u-res"].params == 128 and g["stack-1-u-res"].params == 168
    assert g["stack-0-u"].params == 128 and g["stack"].params == 296
    assert g["fork"].params == 4 * 2 + 2 and g["fork"].output_shape == [
        8,
        8,
        6,
    ]  # concat of 2 and the 4 input channels
    assert g["stack"].output_shape == [8, 8, 4] and g["stack"].output == "stack-1-u-res-add"
    assert (
        g["stack"].macs
        == sum(r.macs for r in report.rows if "stack" in r.group)
        == 8 * 8 * (4 * 27 + 4 * 3 + 4 * 36 + 4 * 4)
    )
    assert sum(s.params for name, s in g.items() if name in ("stack", "fork")) + 0 == report.params


def test_plain_table_fills_group_rows(report):
    lines = RENDERERS["plain"](report).splitlines()
    stack = next(line for line in lines if line.startswith("stack/"))
    assert stack.split()[:6] == ["stack/", "repeat", "(8,", "8,", "4)", "296"]
    fork = next(line for line in lines if line.startswith("fork/"))
    assert "(8, 8, 6)" in fork and " 10 " in fork
    res = next(line for line in lines if line.strip().startswith("res/"))
    assert "residual" in res and "(8, 8, 4)" in res and "128" in res


def test_markdown_and_json_have_group_figures(report):
    md = RENDERERS["markdown"](report)
    assert "| stack/ | repeat | (8, 8, 4) | 296 |" in md
    data = json.loads(RENDERERS["json"](report))
    fork = next(g for g in data["groups"] if g["name"] == "fork")
    assert fork == {
        **fork,
        "kind": "branches",
        "output_shape": [8, 8, 6],
        "params": 10,
        "output": "fork-concat",
    }
