import re

import keras
import numpy as np
import pytest

from kbuilder.layers import _testing
from kbuilder.layers.trainable_subsampling import TrainableSubsampling
from kbuilder.spec.layers import custom as spec


def reference(x, coefficient, bias, pool, stride, mode, activation=lambda v: v):
    """Direct loops over windows, per channel."""
    n, h, w, c = x.shape
    oh, ow = (h - pool[0]) // stride[0] + 1, (w - pool[1]) // stride[1] + 1
    out = np.zeros((n, oh, ow, c), "float64")
    for i in range(oh):
        for j in range(ow):
            window = x[:, i * stride[0] : i * stride[0] + pool[0], j * stride[1] : j * stride[1] + pool[1]]
            pooled = window.sum(axis=(1, 2))
            if mode == "average":
                pooled = pooled / (pool[0] * pool[1])
            out[:, i, j] = coefficient * pooled + bias
    return activation(out)


def set_random_weights(layer, channels, seed=0):
    rng = np.random.default_rng(seed)
    coefficient = rng.normal(size=channels).astype("float32")
    bias = rng.normal(size=channels).astype("float32")
    layer.coefficient.assign(coefficient)
    layer.bias.assign(bias)
    return coefficient, bias


@pytest.mark.parametrize(
    "kwargs, pool, stride",
    [
        ({}, (2, 2), (2, 2)),
        ({"mode": "average"}, (2, 2), (2, 2)),
        ({"pool_size": (3, 2), "strides": 1}, (3, 2), (1, 1)),
        ({"pool_size": 3, "strides": (2, 3), "mode": "AVERAGE"}, (3, 3), (2, 3)),
    ],
)
def test_values_match_reference(kwargs, pool, stride):
    x = np.random.default_rng(1).normal(size=(2, 9, 10, 3)).astype("float32")
    layer = TrainableSubsampling(**kwargs)
    layer.build(x.shape)
    coefficient, bias = set_random_weights(layer, 3)
    out = _testing.assert_output_shape(layer, x)
    expected = reference(x, coefficient, bias, pool, stride, layer.mode)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_activation_is_applied():
    x = np.random.default_rng(2).normal(size=(2, 4, 4, 2)).astype("float32")
    layer = TrainableSubsampling(activation="tanh")
    out = keras.ops.convert_to_numpy(layer(x))
    expected = reference(x, np.ones(2), np.zeros(2), (2, 2), (2, 2), "sum", np.tanh)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


def test_lenet5_s2_and_s4_parameter_counts_and_macs():
    s2 = TrainableSubsampling()
    s2.build((None, 28, 28, 6))
    assert s2.count_params() == 12
    assert s2.compute_output_shape((None, 28, 28, 6)) == (None, 14, 14, 6)
    s2_spec = spec.TrainableSubsampling()
    assert s2_spec.macs([(None, 28, 28, 6)], (None, 14, 14, 6)) == 14 * 14 * 6  # the kind's own count
    s4 = TrainableSubsampling()
    s4.build((None, 10, 10, 16))
    assert s4.count_params() == 32
    assert [w.name for w in s4.trainable_weights] == ["coefficient", "bias"]


def test_none_initializers_mean_the_defaults():
    config = TrainableSubsampling(coefficient_initializer=None, bias_initializer=None).get_config()
    assert config["coefficient_initializer"]["class_name"] == "Ones"
    assert config["bias_initializer"]["class_name"] == "Zeros"


def test_config_round_trip():
    layer = TrainableSubsampling(
        pool_size=3, strides=(1, 2), mode="average", activation="sigmoid", bias_initializer="ones"
    )
    clone = _testing.assert_config_round_trip(layer)
    assert clone.pool_size == (3, 3) and clone.strides == (1, 2) and clone.mode == "average"
    assert clone.get_config()["activation"] == "sigmoid"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            {"pool_size": 0},
            "`pool_size` must be a positive integer or a list of 2 positive integers, received: 0",
        ),
        ({"pool_size": (2, 2, 2)}, "received: (2, 2, 2)"),
        (
            {"strides": -1},
            "`strides` must be a positive integer or a list of 2 positive integers, received: -1",
        ),
        ({"mode": "max"}, "`mode` must be one of 'sum', 'average', received: 'max'"),
        ({"activation": "tanhh"}, "`activation` must be a Keras activation name or None, received: 'tanhh'"),
    ],
)
def test_rejects_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        TrainableSubsampling(**kwargs)


def test_save_load_and_gradients(tmp_path):
    x = np.random.default_rng(3).normal(size=(4, 8, 8, 3)).astype("float32")
    y = np.random.default_rng(4).normal(size=(4, 4, 4, 3)).astype("float32")
    model = _testing.single_layer_model(TrainableSubsampling(activation="tanh", name="s2"), (8, 8, 3))
    set_random_weights(model.get_layer("s2"), 3)
    _testing.assert_save_load_identical(model, x, tmp_path)
    before, after = _testing.fit_two_steps(model, x, y)
    before, after = _testing.weights_by_path(model, before), _testing.weights_by_path(model, after)
    for name in ("s2/coefficient", "s2/bias"):
        assert np.all(before[name] != after[name]), name
