"""A `.keras` file imported as a spec takes the file's own weights through the weights loader:
`kbuilder import model.keras -o spec.yaml`, then `kbuilder build spec.yaml --weights model.keras`
loads every weighted layer by name (kbuilder.weights reads the archive's model.weights.h5, never
deserializing it), and the spec's model then computes what the Keras model computes."""

from __future__ import annotations

import json

import numpy as np
import pytest

import kbuilder.api as kb
from kbuilder.cli.app import main

pytestmark = pytest.mark.slow  # builds and saves a Keras model, then builds the spec twice

WEIGHTED = {"stem_conv", "stem_bn", "block_conv", "block_bn", "head"}


def _saved_model(path):
    """A small functional model with random weights and batch-norm statistics far from the
    defaults (zero mean, unit variance, gamma 1, beta 0), so a layer left unloaded shows."""
    import keras

    inputs = keras.Input((12, 12, 3), name="image")
    x = keras.layers.Conv2D(6, 3, padding="same", name="stem_conv")(inputs)
    x = keras.layers.BatchNormalization(name="stem_bn")(x)
    x = keras.layers.ReLU(name="stem_relu")(x)
    y = keras.layers.Conv2D(6, 3, padding="same", use_bias=False, name="block_conv")(x)
    y = keras.layers.BatchNormalization(epsilon=1e-3, name="block_bn")(y)
    x = keras.layers.Add(name="residual")([x, y])
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = keras.layers.Dense(4, activation="softmax", name="head")(x)
    model = keras.Model(inputs, outputs, name="small")
    rng = np.random.default_rng(7)
    for layer in model.layers:
        weights = [rng.normal(0.0, 0.5, w.shape).astype("float32") for w in layer.get_weights()]
        if isinstance(layer, keras.layers.BatchNormalization):
            weights[3] = rng.uniform(0.5, 2.0, weights[3].shape).astype("float32")  # variance > 0
        layer.set_weights(weights)
    model.save(path)
    return model


def test_the_imported_spec_loads_the_files_weights_and_gives_the_same_outputs(tmp_path, capsys):
    source = tmp_path / "model.keras"
    keras_model = _saved_model(source)
    spec = tmp_path / "spec.yaml"
    assert main(["import", str(source), "-o", str(spec)]) == 0
    capsys.readouterr()

    assert main(["build", str(spec), "--weights", str(source), "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)["weights"]
    assert plan["match"] == "name" and plan["counts"] == {"loaded": len(WEIGHTED), "new": 0, "skipped": 0}
    rows = {row["layer"]: row for row in plan["layers"]}
    assert set(rows) == WEIGHTED
    assert all(
        r["status"] == "loaded" and r["source_layer"] == name and r["note"] == "name"
        for name, r in rows.items()
    )

    built = kb.build(spec, weights=source)
    assert built.weights.counts()["loaded"] == len(WEIGHTED)
    images = np.random.default_rng(0).uniform(0, 1, (4, 12, 12, 3)).astype("float32")
    expected = keras_model.predict(images, verbose=0)
    got = built.model.predict(images, verbose=0)
    assert got.shape == expected.shape == (4, 4)
    assert float(np.max(np.abs(got - expected))) <= 1e-6
    # The spec's own initialization gives other outputs: the agreement comes from the loaded weights.
    fresh = kb.build(spec, weights=False).model.predict(images, verbose=0)
    assert float(np.max(np.abs(fresh - expected))) > 1e-3
