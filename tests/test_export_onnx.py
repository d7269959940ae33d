"""`kbuilder export --to onnx` (and tflite where one export covers both): the ONNX file, run with onnxruntime, gives the in-memory
model's outputs at two batch sizes within the export tolerance, custom layers and grouped
convolutions (lowered to split / convolve / concatenate) included; a layer ONNX cannot
carry is refused without writing anything."""

from __future__ import annotations

import json

import keras
import numpy as np
import onnx
import onnxruntime
import pytest
from ai_edge_litert.interpreter import Interpreter

from kbuilder import api
from kbuilder.cli.app import main
from kbuilder.errors import RuntimeFailure
from kbuilder.export import export_model
from kbuilder.export.check import DEFAULT_ATOL, DEFAULT_RTOL
from kbuilder.export.check import randomize_weights as randomize
from kbuilder.export.onnx import lower_for_onnx
from tests.conftest import SPECS
from tests.test_export import leftovers, snapshot, two_input_model
from tests.test_export_specs import SMALL

pytestmark = pytest.mark.slow

# The zoo's other layer kinds, small: padding, batch norm, a residual add, branches
# concatenated, an inception module, LRN, pooling, dropout, maxout (the full zoo at full size:
# tools/bench_export.py).
MIXED = """\
name: mixed_kinds
inputs:
  image: {shape: [20, 20, 3]}
layers:
  - normalization: {}              # EfficientNet's stem: its statistics reach ONNX as constants
  - zero_padding2d: {padding: 1}
  - conv2d: {filters: 8, kernel_size: 3, strides: 2}
  - batch_norm: {}
  - activation: {activation: relu}
  - residual:
      shortcut: identity
      activation: relu
      layers:
        - conv2d: {filters: 8, kernel_size: 3, padding: same}
        - batch_norm: {}
  - branches:
      merge: concat
      paths:
        input: []
        new:
          - conv2d: {filters: 4, kernel_size: 1, use_bias: false}
  - inception: {conv1x1: 4, conv3x3_reduce: 4, conv3x3: 4, conv5x5_reduce: 2, conv5x5: 4, pool_proj: 4}
  - lrn: {depth_radius: 2, bias: 1.0, alpha: 2.0e-5, beta: 0.75}
  - average_pooling2d: {pool_size: 2}
  - global_average_pooling2d: {}
  - dropout: {rate: 0.4}
  - dense: 12
  - maxout: 4
  - dense: {units: 5, activation: softmax}
"""
SMALL_ZOO = {
    "mixed_kinds": [],
    # AlexNet itself (groups: 2 in conv2/4/5, LRN) on a 67x67 input with narrow dense layers.
    "alexnet": [
        "inputs.image.shape=[67, 67, 3]",
        "layers[11].dense.units=32",
        "layers[13].dense.units=32",
        "layers[15].dense.units=10",
    ],
    # Integer token inputs, embedding, conv1d branches, global max pooling.
    "text_cnn": ["params.vocab_size=50", "params.embed_dim=8"],
    # ViT-B/16's layers, narrow: 4 patches, 2 encoder layers (attention, exact GELU: Erfc).
    "vit_b16": [
        "inputs.image.shape=[32, 32, 3]",
        "params.hidden=16",
        "params.heads=2",
        "params.mlp=32",
        "layers[4].repeat.times=2",
        "layers[7].dense.units=10",
    ],
}


@pytest.mark.parametrize("name", sorted(SMALL_ZOO))
def test_small_zoo_models_reach_onnx_and_tflite(name, tmp_path):
    spec = SPECS / f"{name}.yaml"
    if name == "mixed_kinds":
        spec = tmp_path / "mixed.yaml"
        spec.write_text(MIXED)
    model = api.build(spec, SMALL_ZOO[name]).model
    randomize(model)
    out = export_model(model, tmp_path / "export", manifest={}, formats=["onnx", "tflite"])
    check = json.loads((out / "manifest.json").read_text())["check"]
    assert set(check["tolerance_ratio"]) == {"saved_model", "model.keras", "model.onnx", "model.tflite"}
    assert max(check["tolerance_ratio"].values()) <= 1.0, check
    graph = onnx.load(str(out / "model.onnx")).graph
    assert all(onnx.defs.has(n.op_type, n.domain or "") for n in graph.node)
    if name == "alexnet":  # conv2/4/5 lowered: two convolutions each, split and concatenated
        ops = [n.op_type for n in graph.node]
        assert ops.count("Conv") == 2 + 3 * 2 and {"Split", "Concat"} <= set(ops)


def run_onnx(path, arrays):
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {node.name: a for node, a in zip(session.get_inputs(), arrays)})


def test_lenet5_custom_layers_reach_onnx_and_tflite_through_the_cli(tmp_path, capsys):
    """LeNet-5 has four custom layers: C3's connection table, trainable subsampling, scaled
    tanh and the RBF output (in the hundreds: the relative tolerance at work)."""
    out = tmp_path / "lenet5"
    assert main(["export", str(SPECS / "lenet5.yaml"), str(out), "--to", "onnx,tflite", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["files"] == [
        "manifest.json",
        "model.keras",
        "model.onnx",
        "model.tflite",
        "saved_model",
    ]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["formats"] == ["saved_model", "keras", "onnx", "tflite"]
    assert manifest["check"]["batch_sizes"] == [2, 3]
    ratios = manifest["check"]["tolerance_ratio"]
    assert set(ratios) == {"saved_model", "model.keras", "model.onnx", "model.tflite"}
    assert max(ratios.values()) <= 1.0
    assert {"model.onnx", "model.tflite"} <= set(manifest["files"])
    # Independently of the export's own check: other inputs, another batch size.
    model = keras.saving.load_model(out / "model.keras", safe_mode=True)
    x = np.random.default_rng(9).standard_normal((5, 32, 32, 1)).astype("float32")
    (got,) = run_onnx(out / "model.onnx", [x])
    np.testing.assert_allclose(got, model(x), rtol=DEFAULT_RTOL, atol=DEFAULT_ATOL)


def test_grouped_convolution_is_lowered_with_the_same_weights(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text(SMALL)  # LRN, maxout and a conv2d with groups: 2
    model = api.build(spec).model
    grouped = [layer for layer in model.layers if getattr(layer, "groups", 1) > 1]
    assert len(grouped) == 1
    lowered = lower_for_onnx(model)
    assert lowered is not model and not [l for l in lowered.layers if getattr(l, "groups", 1) > 1]
    # The lowered copy shares the variables (no copying, nothing to drift).
    assert {id(v) for v in lowered.weights} == {id(v) for v in model.weights}
    x = np.random.default_rng(1).standard_normal((3, 16, 16, 3)).astype("float32")
    np.testing.assert_allclose(lowered(x), model(x), rtol=DEFAULT_RTOL, atol=DEFAULT_ATOL)
    plain = two_input_model()
    assert lower_for_onnx(plain) is plain  # nothing to lower: the model itself


def test_two_inputs_and_two_outputs_keep_their_order(tmp_path):
    model = two_input_model()
    out = export_model(model, tmp_path / "export", manifest={}, formats=["onnx", "tflite"])
    assert max(json.loads((out / "manifest.json").read_text())["check"]["tolerance_ratio"].values()) <= 1.0
    session = onnxruntime.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [node.name for node in session.get_inputs()] == ["features", "tokens"]
    features = np.random.default_rng(2).standard_normal((4, 6)).astype("float32")
    tokens = np.random.default_rng(3).integers(0, 10, (4, 3)).astype("int32")
    got = session.run(None, {"features": features, "tokens": tokens})
    expected = model([features, tokens])
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=DEFAULT_RTOL, atol=DEFAULT_ATOL)
    runner = Interpreter(model_path=str(out / "model.tflite")).get_signature_runner()
    served = runner(features=features, tokens=tokens)
    np.testing.assert_allclose(served["output_0"], expected[0], rtol=DEFAULT_RTOL, atol=DEFAULT_ATOL)
    np.testing.assert_allclose(served["output_1"], expected[1], rtol=DEFAULT_RTOL, atol=DEFAULT_ATOL)


class SingularValues(keras.layers.Layer):
    """A layer with no ONNX (nor TFLite builtin) equivalent: TensorFlow's Svd op."""

    def call(self, inputs):
        return keras.ops.svd(keras.ops.reshape(inputs, (-1, 2, 2)), compute_uv=False)


def svd_model() -> keras.Model:
    inputs = keras.Input((4,))
    return keras.Model(inputs, SingularValues()(keras.layers.Dense(4)(inputs)))


def test_a_layer_a_format_cannot_carry_is_refused_and_the_previous_export_kept(tmp_path):
    target = tmp_path / "export"
    export_model(two_input_model(), target, manifest={"version": 1})
    before = snapshot(target)
    with pytest.raises(
        RuntimeFailure, match=r"ONNX cannot carry this model: .* Svd unconverted \(in .*singular_values"
    ):
        export_model(svd_model(), target, manifest={"version": 2}, formats=["onnx"])
    assert snapshot(target) == before and leftovers(tmp_path) == []
    with pytest.raises(
        RuntimeFailure, match=r"TFLite cannot carry this model: TensorFlow op\(s\) Svd in .*singular_values"
    ):
        export_model(svd_model(), target, manifest={"version": 2}, formats=["tflite"])
    assert snapshot(target) == before and leftovers(tmp_path) == []


def test_unknown_format_is_a_usage_error(tmp_path, capsys):
    assert main(["export", str(SPECS / "xor_mlp.yaml"), str(tmp_path / "e"), "--to", "onxx", "--json"]) == 2
    error = json.loads(capsys.readouterr().out)
    assert (
        "unknown export format 'onxx'" in error["problems"][0]
        and "did you mean 'onnx'" in error["problems"][0]
    )
    assert not (tmp_path / "e").exists()
