import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from kbuilder.layers import _testing
from kbuilder.layers.lrn import LocalResponseNormalization


@pytest.mark.parametrize(
    "params, channels",
    [
        ({}, 16),  # TF defaults: depth_radius=5, bias=1, alpha=1, beta=0.5
        ({"depth_radius": 2, "bias": 2.0, "alpha": 1e-4, "beta": 0.75}, 8),  # AlexNet
        ({"depth_radius": 0, "bias": 1.5, "alpha": 0.3, "beta": 1.0}, 5),
        ({"depth_radius": 1, "bias": 0.5, "alpha": 2.0, "beta": 0.25}, 3),
        ({"depth_radius": 10, "bias": 1.0, "alpha": 0.5, "beta": 0.75}, 4),  # r > C
        ({"depth_radius": 3, "bias": 1.0, "alpha": 1.0, "beta": 0.0}, 1),  # one channel
    ],
)
def test_matches_tf_nn_local_response_normalization(params, channels):
    x = np.random.default_rng(0).normal(size=(2, 5, 6, channels)).astype("float32") * 3
    layer = LocalResponseNormalization(**params)
    actual = _testing.assert_output_shape(layer, x)
    expected = tf.nn.local_response_normalization(x, **params).numpy()
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5)


def test_rank_2_and_rank_3_inputs():
    rng = np.random.default_rng(1)
    for shape in [(4, 7), (2, 9, 7)]:
        x = rng.normal(size=shape).astype("float32")
        layer = LocalResponseNormalization(depth_radius=2, bias=2.0, alpha=0.1, beta=0.75)
        # tf.nn's op wants rank 4; LRN only mixes the last axis, so reshape.
        ref = (
            tf.nn.local_response_normalization(
                x.reshape(1, 1, -1, 7), depth_radius=2, bias=2.0, alpha=0.1, beta=0.75
            )
            .numpy()
            .reshape(shape)
        )
        np.testing.assert_allclose(_testing.assert_output_shape(layer, x), ref, rtol=1e-5, atol=1e-5)


def test_has_no_weights_and_config_round_trips():
    layer = LocalResponseNormalization(depth_radius=2, bias=2.0, alpha=1e-4, beta=0.75)
    layer.build((None, 4, 4, 8))
    assert layer.weights == []
    clone = _testing.assert_config_round_trip(layer)
    assert (clone.depth_radius, clone.bias, clone.alpha, clone.beta) == (2, 2.0, 1e-4, 0.75)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"depth_radius": -1}, "`depth_radius` must be a non-negative integer, received: -1"),
        ({"depth_radius": 2.5}, "`depth_radius` must be a non-negative integer, received: 2.5"),
        ({"depth_radius": True}, "received: True"),
        ({"bias": 0.0}, "`bias` must be > 0.0, received: 0.0"),
        ({"alpha": -1.0}, "`alpha` must be >= 0.0, received: -1.0"),
        ({"beta": float("nan")}, "`beta` must be a finite number, received: nan"),
        ({"beta": "0.75"}, "`beta` must be a finite number, received: '0.75'"),
    ],
)
def test_rejects_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        LocalResponseNormalization(**kwargs)


def test_unknown_channels_is_an_error():
    with pytest.raises(ValueError, match="needs a known size"):
        LocalResponseNormalization()(keras.Input(shape=(4, 4, None)))


def test_save_load_and_gradients(tmp_path):
    x = np.random.default_rng(2).normal(size=(4, 6, 6, 8)).astype("float32")
    model = _testing.single_layer_model(
        LocalResponseNormalization(depth_radius=2, bias=2.0, alpha=1e-2, beta=0.75),
        (6, 6, 8),
        head=lambda t: keras.layers.Dense(3)(keras.layers.Conv2D(4, 3)(t)),
    )
    _testing.assert_save_load_identical(model, x, tmp_path)
    # LRN is parameter-free but must pass gradients through to the layers
    # before it: put a trainable conv in front and check it moves.
    inputs = keras.Input(shape=(6, 6, 3))
    conv = keras.layers.Conv2D(8, 1, name="conv")(inputs)
    lrn = LocalResponseNormalization(depth_radius=2, bias=2.0, alpha=1e-1, beta=0.75)(conv)
    out = keras.layers.GlobalAveragePooling2D()(lrn)
    model = keras.Model(inputs, out)
    x3 = x[..., :3]
    y = np.ones((4, 8), "float32")
    before, after = _testing.fit_two_steps(model, x3, y)
    before, after = _testing.weights_by_path(model, before), _testing.weights_by_path(model, after)
    assert not np.allclose(before["conv/kernel"], after["conv/kernel"])
