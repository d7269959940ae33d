"""`kbuilder profile` (issue 19): per-layer times that add up to the measured step, memory per
batch size from the spec's optimizer, throughput, the output formats, refused options."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kbuilder.cli.app import main
from kbuilder.errors import UsageError
from kbuilder.profile.options import check_batch_sizes, parse_size

# Dense layers big enough (about 2 x 256 x 1024 x 1024 FLOPs a call) that a layer's time is its
# arithmetic, not the few tens of microseconds a compiled call costs.
HEAVY_MLP = """
name: heavy_mlp
inputs:
  x: {shape: [1024]}
layers:
  - dense: {name: d1, units: 1024, activation: relu}
  - dense: {name: d2, units: 1024, activation: relu}
  - dense: {name: d3, units: 1024, activation: relu}
  - dense: {name: out, units: 10}
train:
  data: {source: {type: keras, name: mnist}}
  optimizer: {type: sgd, learning_rate: 0.01, momentum: 0.9}
  loss: sparse_categorical_crossentropy
  batch_size: 256
"""
# How far the sum of the layers may be from the whole step: the layers run as separate compiled
# calls on a shared, noisy 2-core machine (measured: 10% above the step at load average 11).
ADDS_UP_TOLERANCE = 0.35


def run(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("8GiB", 8 * 1024**3),
        ("512MiB", 512 * 1024**2),
        ("16GB", 16 * 10**9),
        ("1e9", 10**9),
        ("2.5 gib", int(2.5 * 1024**3)),
    ],
)
def test_sizes_parse(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["lots", "8 parsecs", "-1GiB", "0", "GiB"])
def test_bad_sizes_are_refused_with_an_example(text):
    with pytest.raises(UsageError, match="8GiB"):
        parse_size(text)


def test_batch_sizes_are_checked():
    check_batch_sizes((1, 32, 128))
    with pytest.raises(UsageError, match="at least one sample"):
        check_batch_sizes((0,))
    with pytest.raises(UsageError, match="twice"):
        check_batch_sizes((32, 32))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--memory", "lots"], "is not a size"),
        (["--format", "yaml"], "unknown format"),
        (["--plot", "out.svg"], "PNG"),
        (["--batch-size", "0"], "at least one sample"),
        (["--repeats", "2"], "at least 3 repeats are timed"),
        (["--backend", "tensorflw"], "unknown backend"),
    ],
)
def test_bad_options_exit_2_before_any_work(capsys, args, message):
    code, _, err = run(capsys, "profile", "mnist_mlp", *args)
    assert code == 2, err
    assert message in err and "Traceback" not in err


def test_an_invalid_spec_is_located(capsys, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: m\ninputs: {x: {shape: [4]}}\nlayers:\n  - dense: {units: 3, activaton: relu}\n")
    code, _, err = run(capsys, "profile", str(bad))
    assert code == 2 and f"{bad}:4:23" in err


@pytest.fixture(scope="module")
def heavy(tmp_path_factory):
    import kbuilder.api as kb

    plot = tmp_path_factory.mktemp("plot") / "throughput.png"
    return kb.profile(HEAVY_MLP, batch_sizes=[256, 64], train=True, memory="64MiB", repeats=7, plot=plot)


@pytest.mark.slow
def test_the_layers_add_up_to_the_measured_step(heavy):
    from kbuilder.profile.layers import profile_layers

    def forward_difference(layers) -> float:
        forward_sum = sum(layer.forward_s for layer in layers.layers)
        return abs(forward_sum - layers.model_forward_s) / layers.model_forward_s

    def adds_up(layers) -> bool:
        return abs(layers.difference) < ADDS_UP_TOLERANCE and forward_difference(layers) < ADDS_UP_TOLERANCE

    layers = heavy.layers
    # A measurement on a shared machine: a burst of load from other processes can move one of
    # the timings (the step, the forward pass or a layer's); measured again (at most three
    # times) before it counts as a failure.
    for _ in range(3):
        if adds_up(layers):
            break
        layers = profile_layers(heavy.built, 256, train=True, repeats=7)
    assert layers.train and layers.model_step_s and layers.model_forward_s
    assert abs(layers.difference) < ADDS_UP_TOLERANCE, layers.as_json()
    assert forward_difference(layers) < ADDS_UP_TOLERANCE, layers.as_json()
    shares = [row["share"] for row in layers.as_json()["layers"]]
    assert sum(shares) == pytest.approx(1.0, abs=0.01)


@pytest.mark.slow
def test_each_layer_has_its_figures(heavy):
    rows = {row["name"]: row for row in heavy.as_json()["layers"]["layers"]}
    assert list(rows) == ["d1", "d2", "d3", "out"]
    assert rows["d2"]["macs"] == 1024 * 1024 and rows["out"]["macs"] == 1024 * 10
    assert rows["d2"]["activation_bytes"] == 256 * 1024 * 4  # float32 outputs of the batch
    for name in ("d1", "d2", "d3"):  # the big layers: their time is arithmetic, not overhead
        assert rows[name]["forward_ms"] > 0 and rows[name]["backward_ms"] > 0
        assert rows[name]["forward_gflop_per_s"] > 0 and rows[name]["step_gflop_per_s"] > 0
    # d1 reads the model's input: no input gradient, so its backward costs less than d2's (one
    # matmul against two); a relation, not a machine's speed.
    assert rows["d1"]["backward_ms"] < rows["d2"]["backward_ms"] * 1.5


@pytest.mark.slow
def test_memory_counts_the_optimizers_slots_and_fits_the_budget(heavy):
    memory = heavy.memory
    params = 4 * (1024 * 1024 * 3 + 3 * 1024 + 1024 * 10 + 10)
    assert memory.parameters == params and memory.gradients == params
    assert memory.optimizer_state == params  # SGD with momentum: one slot a weight
    largest = heavy.largest_batch
    assert largest and memory.at(largest).total <= 64 * 1024**2 < memory.at(largest + 1).total
    rows = heavy.batch_rows()
    assert [row["batch_size"] for row in rows] == [256, 64]
    assert rows[0]["memory_activations"] == 4 * rows[1]["memory_activations"]


@pytest.mark.slow
def test_throughput_and_its_fraction_of_the_peak(heavy):
    for row in heavy.batch_rows():
        assert row["inference_samples_per_s"] > 0 and row["training_samples_per_s"] > 0
        expected = 6 * heavy.macs * row["training_samples_per_s"] / heavy.peak.flop_per_s
        assert row["training_fraction_of_peak"] == pytest.approx(expected, rel=0.01, abs=1e-4)
        assert row["inference_samples_per_s"] > row["training_samples_per_s"]  # a step does 3x the work
    assert heavy.plot is not None and heavy.plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("optimizer", "slots"), [("{type: adam}", 2), ("{type: sgd}", 0), ("{type: rmsprop}", 1)]
)
def test_optimizer_state_follows_the_spec(optimizer, slots):
    import kbuilder.api as kb
    from kbuilder.profile.memory import memory_model
    from kbuilder.profile.run import optimizer_factory

    built = kb.build(HEAVY_MLP.replace("{type: sgd, learning_rate: 0.01, momentum: 0.9}", optimizer))
    new_optimizer, name, _ = optimizer_factory(built)
    memory = memory_model(built.model, new_optimizer(), name)
    assert memory.optimizer_state == slots * memory.gradients


@pytest.mark.slow
def test_json_markdown_csv_and_table_formats(capsys, tmp_path):
    spec = tmp_path / "small.yaml"
    spec.write_text(HEAVY_MLP.replace("1024", "64"))
    code, out, _ = run(
        capsys, "profile", str(spec), "-b", "32", "-b", "8", "--train", "--format", "json", "--repeats", "3"
    )
    data = json.loads(out)
    assert code == 0 and [row["name"] for row in data["layers"]["layers"]] == ["d1", "d2", "d3", "out"]
    assert {"sum_of_layers_ms", "measured_ms", "difference"} <= set(data["layers"])
    assert [row["batch_size"] for row in data["batch_sizes"]] == [32, 8]
    code, out, _ = run(
        capsys, "profile", str(spec), "--format", "markdown", "--repeats", "3", "--memory", "1GiB"
    )
    assert code == 0 and "| layer | kind |" in out and "largest batch that fits 1.0 GiB" in out
    assert "backward ms" not in out  # forward only without --train
    code, out, _ = run(capsys, "profile", str(spec), "--format", "csv", "--repeats", "3")
    layers_part, batches_part = out.split("\n\n")
    layers = list(csv.DictReader(io.StringIO(layers_part)))
    assert [row["name"] for row in layers] == ["d1", "d2", "d3", "out"] and float(layers[1]["forward_ms"]) > 0
    assert next(iter(csv.DictReader(io.StringIO(batches_part))))["batch_size"] == "256"  # the spec's
    code, out, _ = run(capsys, "profile", str(spec), "--repeats", "3")
    assert code == 0 and "sum of the layers" in out and "per batch size:" in out


@pytest.mark.slow
@pytest.mark.subprocess
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_the_other_backends_profile_too(backend, tmp_path):
    """Each backend has its own compiled calls (kbuilder.profile.calls): a fresh process each,
    since Keras cannot switch backends in one."""
    root = Path(__file__).resolve().parents[1]
    spec = tmp_path / "small.yaml"
    spec.write_text(HEAVY_MLP.replace("1024", "64"))
    done = subprocess.run(
        [sys.executable, "-m", "kbuilder.cli.app", "profile", str(spec), "--backend", backend, "--train"]
        + ["-b", "16", "-b", "4", "--repeats", "3", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": str(root), "XDG_CACHE_HOME": str(tmp_path / "cache")},
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    data = json.loads(done.stdout)
    assert data["backend"] == backend
    rows = data["layers"]["layers"]
    assert [row["name"] for row in rows] == ["d1", "d2", "d3", "out"]
    assert all(row["forward_ms"] > 0 and row["backward_ms"] is not None for row in rows)
    assert [row["batch_size"] for row in data["batch_sizes"]] == [16, 4]
    assert all(row["training_samples_per_s"] > 0 for row in data["batch_sizes"])
    assert data["memory"]["optimizer_state"] == data["memory"]["gradients"]  # SGD with momentum


@pytest.mark.slow
def test_blocks_get_the_sum_of_their_layers():
    repeated = """
name: repeated
inputs:
  x: {shape: [64]}
layers:
  - repeat: {name: body, times: 2, layers: [{dense: {name: d, units: 64, activation: relu}}]}
  - dense: {name: out, units: 10}
"""
    import kbuilder.api as kb
    from kbuilder.profile.render import as_markdown

    data = kb.profile(repeated, batch_sizes=[8], train=True, repeats=3).as_json()
    rows = {row["name"]: row for row in data["layers"]["layers"]}
    assert rows["body-0-d"]["group"] == "body" and rows["out"]["group"] == ""
    (block,) = data["layers"]["blocks"]
    assert block["block"] == "body" and block["layers"] == 2 and block["macs"] == 2 * 64 * 64
    inside = [rows["body-0-d"], rows["body-1-d"]]
    assert block["forward_ms"] == pytest.approx(sum(r["forward_ms"] for r in inside), abs=1e-3)
    assert block["share"] == pytest.approx(sum(r["share"] for r in inside), abs=2e-4)
    assert "Per block (its layers' sum):" in as_markdown(data) and "| body | 2 |" in as_markdown(data)
