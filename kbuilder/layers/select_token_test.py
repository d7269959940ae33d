import re

import numpy as np
import pytest

from kbuilder.layers import _testing
from kbuilder.layers.select_token import SelectToken


@pytest.mark.parametrize("index", [0, 2, -1])
def test_takes_one_position(index):
    x = np.random.default_rng(0).normal(size=(3, 5, 4)).astype("float32")
    out = _testing.assert_output_shape(SelectToken(index), x)
    np.testing.assert_array_equal(out, x[:, index])


def test_keeps_the_axes_after_the_sequence():
    x = np.random.default_rng(0).normal(size=(2, 3, 4, 5)).astype("float32")
    np.testing.assert_array_equal(_testing.assert_output_shape(SelectToken(1), x), x[:, 1])


@pytest.mark.parametrize(
    "kwargs, shape, message",
    [
        ({"index": 1.5}, None, "`index` must be an integer, received: 1.5"),
        ({"index": 5}, (None, 5, 4), "SelectToken(index=5) needs a (batch, sequence, features) input"),
        ({"index": -6}, (None, 5, 4), "SelectToken(index=-6) needs"),
        ({"index": 0}, (None, 4), "received: (None, 4)"),
    ],
)
def test_refuses_a_position_the_input_lacks(kwargs, shape, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        SelectToken(**kwargs).build(shape)


def test_config_round_trip():
    assert _testing.assert_config_round_trip(SelectToken(index=-1)).index == -1


def test_save_load_and_gradients(tmp_path):
    import keras

    x = np.random.default_rng(1).normal(size=(8, 6, 4)).astype("float32")
    y = np.full((8, 2), 0.5, "float32")
    model = _testing.single_layer_model(SelectToken(0), (6, 4), head=keras.layers.Dense(2, name="dense"))
    _testing.assert_save_load_identical(model, x, tmp_path)
    before, after = _testing.fit_two_steps(model, x, y)
    before, after = _testing.weights_by_path(model, before), _testing.weights_by_path(model, after)
    assert not np.allclose(before["dense/kernel"], after["dense/kernel"])
