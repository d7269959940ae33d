"""Helpers shared by the `*_test.py` files of kbuilder.layers (not used at runtime).

They are backend-agnostic (keras + numpy only), so the same checks hold
whatever `KERAS_BACKEND` the tests run under.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable
from typing import Any

import keras
import numpy as np


def assert_config_round_trip(layer: keras.layers.Layer) -> keras.layers.Layer:
    """`from_config(get_config())` rebuilds a layer with an equal config."""
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    return clone


def assert_output_shape(layer: keras.layers.Layer, inputs: np.ndarray) -> np.ndarray:
    """Calls `layer` eagerly and checks the result against `compute_output_shape`.

    The batch dimension is passed as `None` to `compute_output_shape`, as Keras
    does when building a functional model.
    """
    outputs = keras.ops.convert_to_numpy(layer(inputs))
    declared = layer.compute_output_shape((None,) + tuple(inputs.shape[1:]))
    assert tuple(declared) == (None,) + tuple(outputs.shape[1:])
    symbolic = layer(keras.Input(shape=inputs.shape[1:], batch_size=None))
    assert tuple(symbolic.shape) == tuple(declared)
    return outputs


def single_layer_model(
    layer: keras.layers.Layer, input_shape: tuple[int, ...], head: Callable[[Any], Any] | None = None
) -> keras.Model:
    """A functional model `Input -> layer [-> head]`."""
    inputs = keras.Input(shape=input_shape)
    outputs = layer(inputs)
    if head is not None:
        outputs = head(outputs)
    return keras.Model(inputs, outputs)


def assert_save_load_identical(model: keras.Model, inputs: np.ndarray, tmp_path: pathlib.Path) -> keras.Model:
    """Saves to `.keras`, reloads with `safe_mode=True`, compares outputs exactly."""
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    expected = keras.ops.convert_to_numpy(model(inputs, training=False))
    actual = keras.ops.convert_to_numpy(loaded(inputs, training=False))
    np.testing.assert_array_equal(actual, expected)
    return loaded


def fit_two_steps(
    model: keras.Model, x: np.ndarray, y: np.ndarray, loss: str = "mse"
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Runs 2 SGD steps; returns every weight of the model before and after.

    Backend-agnostic gradient check: a trainable weight whose gradient is
    non-zero must change after a step with a large learning rate.
    """
    before = [np.array(keras.ops.convert_to_numpy(w)) for w in model.weights]
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1), loss=loss)
    model.fit(x, y, batch_size=len(x), epochs=2, verbose=0, shuffle=False)
    after = [np.array(keras.ops.convert_to_numpy(w)) for w in model.weights]
    return before, after


def weights_by_path(model: keras.Model, values: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Pairs `fit_two_steps` arrays with the weights' paths, e.g. 'lrn/bias'."""
    return {w.path: v for w, v in zip(model.weights, values)}
