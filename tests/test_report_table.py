"""The terminal table (issue 20): full layer names that `model.get_layer` takes, `--depth`
as torchinfo has it, a "Connected to" column for merges, human units (exact integers stay
in JSON and CSV) and a table that fits an 80-column terminal."""

from __future__ import annotations

import csv
import io
import json

import pytest
from rich.console import Console

from kbuilder import api as kb
from kbuilder.cli.app import main
from kbuilder.report.cells import human
from kbuilder.spec import loads_spec
from kbuilder.zoo import spec_path
from tests.test_report_groups import SPEC

BUNDLED = ("mnist_mlp", "lenet5", "resnet50", "googlenet", "densenet121", "vit_b16", "text_transformer")


def run(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("count", "text"),
    [
        (0, "0"),
        (999, "999"),
        (1_000, "1.00 K"),
        (100_480, "100 K"),
        (999_600, "1.00 M"),
        (25_636_712, "25.6 M"),
        (3_857_973_248, "3.86 G"),
        (12_345_678_901_234, "12.3 T"),
    ],
)
def test_human_units(count, text):
    assert human(count) == text


def _layer_cells(out: str) -> list[str]:
    """The first column of a plain table's body."""
    lines = out.splitlines()
    rules = [i for i, line in enumerate(lines) if line and set(line) == {"-"}]
    return [line.split()[0] for line in lines[rules[1] + 1 : rules[2]]]


def test_layer_rows_show_full_names(capsys):
    code, out, _ = run(capsys, "build", "resnet50", "--format", "plain")
    cells = _layer_cells(out)
    names = [row.name for row in kb.report("resnet50").rows]
    assert code == 0 and [c for c in cells if not c.endswith("/")] == names
    assert len(set(names)) == len(names) and "conv2_x-block1-unit-conv1" in cells
    assert sum(c.endswith("-conv1") for c in cells) == 16  # the 16 nested conv1, each in full


@pytest.mark.slow
def test_every_name_shown_is_one_get_layer_takes():
    spec = loads_spec(SPEC, file="groups.yaml")
    built = kb.build(spec)
    cells = _layer_cells(kb.table(built, "plain"))
    layers = [c for c in cells if not c.endswith("/")]
    assert layers and all(built.model.get_layer(name).name == name for name in layers)
    assert "stack-0-u-res-conv2d_0" in layers


def test_depth_folds_rows_into_group_subtotals(capsys):
    rows = {
        depth: _layer_cells(run(capsys, "build", "resnet50", "--format", "plain", "--depth", str(depth))[1])
        for depth in (0, 1, 2)
    }
    full = _layer_cells(run(capsys, "build", "resnet50", "--format", "plain")[1])
    assert "conv2_x/" in rows[0] and "block1/" not in rows[0] and "avg_pool" in rows[0]
    assert not any("conv2_x-" in c for c in rows[0])
    assert "block1/" in rows[1] and "unit/" not in rows[1]
    assert "unit/" in rows[2] and "conv2_x-block1-unit-conv1" not in rows[2]
    assert len(rows[0]) < len(rows[1]) < len(rows[2]) < len(full)
    report = kb.report("resnet50")
    assert len(rows[0]) == sum(not r.group for r in report.rows) + sum(
        1 for name in report.group_summaries if "-" not in name
    )


def test_depth_leaves_json_and_csv_whole(capsys):
    whole = json.loads(run(capsys, "build", "googlenet", "--format", "json")[1])
    folded = json.loads(run(capsys, "build", "googlenet", "--format", "json", "--depth", "0")[1])
    assert whole == folded
    code, out, _ = run(capsys, "check", "googlenet", "--format", "plain", "--depth", "0")
    assert code == 0 and "inception_3a/" in out and "inception_3a-concat" not in out


def test_connected_to_names_every_input_of_a_merge(capsys):
    out = run(capsys, "build", "googlenet", "--format", "plain")[1]
    concat = next(line for line in out.splitlines() if line.startswith("inception_3a-concat "))
    inputs = next(r for r in kb.report("googlenet").rows if r.name == "inception_3a-concat").inputs
    assert "Connected to" in out and len(inputs) == 4 and ", ".join(inputs) in concat
    assert "Connected to" not in run(capsys, "build", "mnist_mlp", "--format", "plain")[1]


def test_terminal_units_and_exact_machine_formats(capsys):
    plain = run(capsys, "build", "resnet50", "--format", "plain")[1]
    conv1 = next(line for line in plain.splitlines() if line.startswith("conv1 "))
    assert "9.47 K" in conv1 and "118 M" in conv1 and "9,472" not in conv1
    assert "MACs per sample: 3,857,973,248 (3.86 G)" in plain  # totals exact, units beside
    rows = list(csv.DictReader(io.StringIO(run(capsys, "build", "resnet50", "--format", "csv")[1])))
    conv1_row = next(r for r in rows if r["name"] == "conv1")
    assert conv1_row["params"] == "9472" and conv1_row["macs"] == "118013952"
    data = json.loads(run(capsys, "build", "resnet50", "--format", "json")[1])
    assert next(r for r in data["layers"] if r["name"] == "conv1")["params"] == 9472
    assert "| conv1 | conv2d | (112, 112, 64) | 9,472 |" in kb.table("resnet50", "markdown")


@pytest.mark.parametrize("name", BUNDLED)
def test_plain_table_fits_80_columns(capsys, monkeypatch, name):
    monkeypatch.setenv("COLUMNS", "80")
    code, out, _ = run(capsys, "build", name, "--format", "plain")
    assert code == 0 and max(len(line) for line in out.splitlines()) <= 80
    assert _layer_cells(out)  # still a table


@pytest.mark.parametrize("name", BUNDLED)
def test_rich_table_fits_an_80_column_console(name):
    text = kb.table(name, "rich", width=80)
    console = Console(width=80, record=True, file=io.StringIO())
    console.print(text, end="", highlight=False, markup=False, soft_wrap=True)
    assert max(len(line) for line in console.export_text().splitlines()) <= 80
    assert max(len(line) for line in text.splitlines()) <= 80


def test_columns_are_left_out_in_order_and_said(monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "80")
    out = run(capsys, "build", "resnet50", "--format", "plain")[1]
    assert "(left out to fit 80 columns: Line, Receptive field" in out
    assert "Output shape" in out and "Params" in out and "MACs" in out
    monkeypatch.setenv("COLUMNS", "400")
    wide = run(capsys, "build", "resnet50", "--format", "plain")[1]
    assert "left out" not in wide and "Receptive field" in wide and "Line" in wide
    monkeypatch.delenv("COLUMNS")
    assert "left out" not in kb.table(spec_path("resnet50"), "plain")  # no terminal: no limit
