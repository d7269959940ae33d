"""The command line: outputs, formats, exit codes (0 ok, 1 check failed, 2 invalid)."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys

import pytest

from kbuilder.cli.app import main
from tests.conftest import SPECS

MLP = str(SPECS / "mnist_mlp.yaml")


def run(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_build_plain_table(capsys):
    code, out, _ = run(capsys, "build", MLP, "--format", "plain")
    assert code == 0
    # fc1's 100,480 parameters in human units; the totals stay exact
    assert "fc1" in out and "100 K" in out and "Total params: 109,386" in out


def test_check_json_has_the_documented_keys(capsys):
    code, out, _ = run(capsys, "check", MLP, "--format", "json")
    data = json.loads(out)
    assert code == 0 and data["ok"] is True
    assert {
        "name",
        "params",
        "trainable_params",
        "non_trainable_params",
        "macs",
        "output_shape",
        "layers",
    } <= set(data)
    assert data["params"] == 109386 and data["output_shape"] == [10]
    row = data["layers"][2]
    assert {"name", "kind", "output_shape", "params", "macs", "receptive_field", "line"} <= set(row)
    assert (
        row["name"] == "fc1"
        and row["output_shape"] == [128]
        and row["macs"] == 784 * 128
        and row["line"] == 10
    )


def test_markdown_and_csv(capsys):
    _, md, _ = run(capsys, "build", MLP, "--format", "markdown")
    assert md.startswith("### mnist_mlp") and "| fc2 | dense | (64) | 8,256 |" in md
    _, text, _ = run(capsys, "build", MLP, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows[-1]["name"] == "logits" and rows[-1]["params"] == "650"


def test_check_failure_exits_1_with_a_diff(capsys):
    code, _out, err = run(
        capsys, "check", MLP, "--set", "expect.params=100", "--set", "expect.layers.fc1.output_shape=[64]"
    )
    assert code == 1
    assert "params: expected 100, got 109,386 (+109,286)" in err
    assert "layers.fc1.output_shape: expected (64), got (128)" in err


def test_invalid_spec_exits_2_without_traceback(capsys, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: m\ninputs: {x: {shape: [4]}}\nlayers:\n  - dense: {units: 3, activaton: relu}\n")
    code, _, err = run(capsys, "build", str(bad))
    assert code == 2
    assert (
        f"{bad}:4:23: layers[0].dense.activaton: unknown field 'activaton' - did you mean 'activation'?"
        in err
    )
    assert "Traceback" not in err


def test_invalid_spec_json_error(capsys, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: m\ninputs: {x: {shape: [4]}}\nlayers: [{conv2: 3}]\n")
    code, out, _ = run(capsys, "check", str(bad), "--format", "json")
    data = json.loads(out)
    assert code == 2 and data["ok"] is False and "did you mean 'conv2d'" in data["problems"][0]


def test_usage_errors_exit_2(capsys):
    assert run(capsys, "build", "no_such_spec.yaml")[0] == 2
    assert run(capsys, "build", MLP, "--format", "yaml")[0] == 2
    assert run(capsys, "frobnicate")[0] == 2


def test_bundled_names_resolve(capsys):
    code, out, _ = run(capsys, "build", "xor_mlp", "--format", "plain")
    assert code == 0 and "Total params: 261" in out


def test_schema_and_zoo(capsys):
    code, out, _ = run(capsys, "schema")
    assert code == 0 and json.loads(out)["title"] == "kbuilder model spec"
    code, out, _ = run(capsys, "zoo")
    assert code == 0 and "mnist_mlp" in out and "109,386" in out


@pytest.mark.subprocess
def test_validate_is_fast_and_imports_no_keras():
    """`validate` must not import TensorFlow/Keras (that alone takes seconds)."""
    code = (
        "import sys, time; t = time.perf_counter(); from kbuilder.cli.app import main; "
        f"rc = main(['validate', {MLP!r}]); "
        "heavy = [m for m in ('tensorflow', 'keras', 'jax', 'torch') if m in sys.modules]; "
        "print(heavy, rc, time.perf_counter() - t)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    heavy, rc, seconds = out.strip().rsplit("\n", 1)[-1].rsplit(" ", 2)
    assert heavy == "[]" and rc == "0", out
    assert float(seconds) < 5.0  # generous for loaded CI machines; typically ~0.3 s


@pytest.mark.subprocess
def test_console_script_and_debug_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: m\n")
    env = {**os.environ, "KBUILDER_DEBUG": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "kbuilder.cli.app", "validate", str(bad)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.returncode == 2 and "Traceback" in proc.stderr
    proc = subprocess.run(
        [sys.executable, "-m", "kbuilder.cli.app", "validate", str(bad)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "missing required field 'inputs'" in proc.stderr
