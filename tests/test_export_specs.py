"""Export from specs through the CLI: SavedModel and .keras reproduce the model (the
export verifies this itself and fails otherwise), with a manifest tracing the spec."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from kbuilder.cli.app import main
from tests.conftest import SPECS

pytestmark = pytest.mark.slow

SMALL = """\
name: lrn_maxout
inputs:
  image: {shape: [16, 16, 3]}
layers:
  - conv2d: {filters: 8, kernel_size: 3, groups: 1, activation: relu}
  - lrn: {depth_radius: 2, bias: 2.0, alpha: 0.0001, beta: 0.75}
  - max_pooling2d: {pool_size: 3, strides: 2}
  - conv2d: {filters: 8, kernel_size: 3, padding: same, groups: 2}
  - global_average_pooling2d
  - dense: 12
  - maxout: 4
  - dense: {units: 3, activation: softmax}
"""


def test_export_lenet5_with_custom_layers(tmp_path, capsys):
    out = tmp_path / "lenet5"
    assert main(["export", str(SPECS / "lenet5.yaml"), str(out)]) == 0
    assert {p.name for p in out.iterdir()} == {"saved_model", "model.keras", "manifest.json"}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model"] == "lenet5"
    assert manifest["spec_file_sha256"] == hashlib.sha256((SPECS / "lenet5.yaml").read_bytes()).hexdigest()
    check = manifest["check"]
    assert (check["atol"], check["rtol"]) == (1e-5, 1e-5)
    assert max(check["tolerance_ratio"].values()) <= 1.0  # per artifact, elementwise
    assert manifest["resolved_spec"]["name"] == "lenet5"


def test_export_small_lrn_maxout_spec_and_reload(tmp_path, capsys):
    import keras

    import kbuilder.layers  # noqa: F401  (registers the custom layers for loading)

    spec = tmp_path / "s.yaml"
    spec.write_text(SMALL)
    out = tmp_path / "export"
    assert main(["build", str(spec), "--format", "plain", "--export", str(out)]) == 0
    assert "exported to" in capsys.readouterr().out
    model = keras.saving.load_model(out / "model.keras", safe_mode=True)
    x = np.random.default_rng(0).random((2, 16, 16, 3), dtype=np.float32)
    assert model.predict(x, verbose=0).shape == (2, 3)
    # Exporting again replaces the first export atomically.
    assert main(["export", str(spec), str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name or ".old-" in p.name]


TRANSFORMER = """\
name: tiny_transformer
inputs:
  tokens: {shape: [12, 16]}
layers:
  - class_token: {name: cls, token_initializer: random_normal}
  - position_embedding: {name: pos}
  - residual:
      name: attention
      layers:
        - layer_norm: {epsilon: 1.0e-6}
        - multi_head_attention: {num_heads: 2, key_dim: 8, output_shape: 16}
  - layer_norm: {epsilon: 1.0e-6}
  - select_token: 0
  - dense: {units: 3, activation: softmax}
"""


def test_export_attention_and_token_layers_and_reload(tmp_path, capsys):
    """MultiHeadAttention and the token layers survive SavedModel + .keras export (the
    export compares both with the built model) and reload in safe mode."""
    import keras

    import kbuilder.layers  # noqa: F401  (registers the custom layers for loading)

    spec = tmp_path / "t.yaml"
    spec.write_text(TRANSFORMER)
    out = tmp_path / "export"
    assert main(["export", str(spec), str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True
    model = keras.saving.load_model(out / "model.keras", safe_mode=True)
    assert {type(layer).__name__ for layer in model.layers} >= {
        "ClassToken",
        "PositionEmbedding",
        "MultiHeadAttention",
        "SelectToken",
    }
    x = np.random.default_rng(0).normal(size=(2, 12, 16)).astype("float32")
    assert model.predict(x, verbose=0).shape == (2, 3)
