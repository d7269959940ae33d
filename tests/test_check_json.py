"""`kbuilder check`: one JSON document per run whatever happens, every spec's result even
when one cannot be built, and each difference printed once in text mode."""

from __future__ import annotations

import json

from kbuilder.cli.app import main
from tests.conftest import SPECS

MLP = str(SPECS / "mnist_mlp.yaml")
XOR = str(SPECS / "xor_mlp.yaml")
TOO_SMALL = """name: too_small
inputs: {x: {shape: [8, 8, 1]}}
layers:
  - conv2d: {filters: 4, kernel_size: 3}
  - max_pooling2d: 2
  - conv2d: {name: big, filters: 4, kernel_size: 5}
  - flatten
  - dense: 2
"""


def run(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_failing_check_is_one_json_document(capsys):
    code, out, _ = run(capsys, "check", MLP, "--set", "expect.params=100", "--format", "json")
    data = json.loads(out)  # a second document would raise "Extra data"
    assert code == 1 and data["ok"] is False and data["exit_code"] == 1
    assert data["differences"] == ["params: expected 100, got 109,386 (+109,286)"]
    assert data["params"] == 109386


def test_multi_spec_check_keeps_every_result(capsys, tmp_path):
    bad = tmp_path / "too_small.yaml"
    bad.write_text(TOO_SMALL)
    code, out, _ = run(capsys, "check", MLP, str(bad), XOR, "--format", "json")
    data = json.loads(out)
    assert code == 2 and data["ok"] is False and data["exit_code"] == 2
    mlp, small, xor = data["specs"]
    assert mlp["spec"] == MLP and mlp["ok"] is True and mlp["differences"] == []
    assert xor["ok"] is True and xor["params"] == 261
    assert small["ok"] is False and small["exit_code"] == 2 and small["error"] == "cannot build model"
    assert small["problems"] == [
        f"{bad}:6:5: layers[2]: layer 'big' (conv2d 5x5, valid) needs at least 5x5 input, gets 3x3"
    ]
    assert [row["name"] for row in small["layers_built"]] == ["x", "conv2d_0", "max_pooling2d_1"]


def test_multi_spec_check_with_an_invalid_spec_still_checks_the_rest(capsys, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: m\ninputs: {x: {shape: [4]}}\nlayers: [{conv2: 3}]\n")
    code, out, err = run(capsys, "check", str(bad), XOR)
    assert code == 2
    assert "Total params: 261" in out and "expect: ok" in out
    assert "unknown layer kind 'conv2' - did you mean 'conv2d'?" in err


def test_text_lists_each_difference_once(capsys):
    code, out, err = run(
        capsys, "check", MLP, "--set", "expect.params=100", "--set", "expect.layers.fc1.output_shape=[64]"
    )
    assert code == 1
    both = out + err
    for diff in (
        "params: expected 100, got 109,386 (+109,286)",
        "layers.fc1.output_shape: expected (64), got (128)",
    ):
        assert both.count(diff) == 1, both
    assert "expect: FAILED (2 differences)" in out


def test_build_failure_prints_the_table_up_to_the_failing_layer(capsys, tmp_path):
    bad = tmp_path / "too_small.yaml"
    bad.write_text(TOO_SMALL)
    code, out, err = run(capsys, "build", str(bad), "--format", "plain")
    assert code == 2
    assert "built up to the failing layer" in out and "max_pooling2d_1" in out and "(3, 3, 4)" in out
    assert "big" not in out
    assert "needs at least 5x5 input, gets 3x3" in err and "the table above shows every layer built" in err
    code, out, _ = run(capsys, "build", str(bad), "--format", "json")
    data = json.loads(out)
    assert code == 2 and data["ok"] is False and len(data["layers_built"]) == 3


def test_failure_at_the_first_layer_still_shows_the_inputs(capsys, tmp_path):
    bad = tmp_path / "first.yaml"
    bad.write_text(
        "name: m\ninputs: {x: {shape: [4, 4, 1]}}\nlayers:\n  - conv2d: {filters: 2, kernel_size: 5}\n"
    )
    code, out, err = run(capsys, "build", str(bad), "--format", "plain")
    assert code == 2 and "(4, 4, 1)" in out and "the table above shows every layer built" in err
