import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from kbuilder.layers import _testing
from kbuilder.layers.maxout import Maxout


def tfa_maxout(inputs: np.ndarray, num_units: int, axis: int = -1) -> np.ndarray:
    """tensorflow_addons.layers.Maxout.call, verbatim in TensorFlow ops."""
    inputs = tf.convert_to_tensor(inputs)
    shape = inputs.get_shape().as_list()
    num_channels = shape[axis]
    axis = axis + len(shape) if axis < 0 else axis
    expand_shape = shape[:]
    expand_shape[axis] = num_units
    expand_shape.insert(axis, num_channels // num_units)
    return tf.math.reduce_max(tf.reshape(inputs, expand_shape), axis, keepdims=False).numpy()


@pytest.mark.parametrize(
    "shape, num_units, axis",
    [
        ((3, 12), 4, -1),
        ((3, 12), 12, -1),
        ((3, 12), 1, -1),
        ((2, 5, 6, 8), 2, -1),
        ((2, 6, 5, 3), 3, 1),
        ((2, 4, 6, 3), 2, -2),
    ],
)
def test_matches_tensorflow_addons(shape, num_units, axis):
    x = np.random.default_rng(0).normal(size=shape).astype("float32")
    layer = Maxout(num_units, axis=axis)
    actual = _testing.assert_output_shape(layer, x)
    np.testing.assert_array_equal(actual, tfa_maxout(x, num_units, axis))


def test_groups_are_strided_channels():
    # 6 channels, 2 units: unit 0 = max(c0, c2, c4), unit 1 = max(c1, c3, c5).
    x = np.array([[1.0, 10.0, 5.0, -1.0, 3.0, 2.0]], "float32")
    out = keras.ops.convert_to_numpy(Maxout(2)(x))
    np.testing.assert_array_equal(out, [[5.0, 10.0]])


def test_config_round_trip_and_no_weights():
    layer = Maxout(num_units=3, axis=2)
    layer.build((None, 4, 6))
    assert layer.weights == []
    clone = _testing.assert_config_round_trip(layer)
    assert (clone.num_units, clone.axis) == (3, 2)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_units": 0}, "`num_units` must be a positive integer, received: 0"),
        ({"num_units": "4"}, "`num_units` must be a positive integer, received: '4'"),
        ({"num_units": 2, "axis": 1.0}, "`axis` must be an integer, received: 1.0"),
        ({"num_units": 2, "axis": 0}, "`axis` must not be the batch axis 0, received: 0"),
    ],
)
def test_rejects_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        Maxout(**kwargs)


def test_rejects_indivisible_and_out_of_range_axes():
    with pytest.raises(ValueError, match=re.escape("(10) must be divisible by `num_units` (4)")):
        Maxout(4)(keras.Input(shape=(10,)))
    with pytest.raises(ValueError, match="out of range"):
        Maxout(2, axis=3)(keras.Input(shape=(4, 4)))


def test_save_load_and_gradients(tmp_path):
    x = np.random.default_rng(1).normal(size=(8, 5)).astype("float32")
    y = np.random.default_rng(2).normal(size=(8, 3)).astype("float32")
    inputs = keras.Input(shape=(5,))
    hidden = keras.layers.Dense(12, name="dense")(inputs)
    outputs = Maxout(3)(hidden)
    model = keras.Model(inputs, outputs)
    _testing.assert_save_load_identical(model, x, tmp_path)
    before, after = _testing.fit_two_steps(model, x, y)
    before, after = _testing.weights_by_path(model, before), _testing.weights_by_path(model, after)
    # Only the group winners get gradient, but every unit has one winner per
    # sample, so the kernel must move.
    assert not np.allclose(before["dense/kernel"], after["dense/kernel"])
