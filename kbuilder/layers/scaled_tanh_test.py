import math
import re

import keras
import numpy as np
import pytest

from kbuilder.layers import _testing
from kbuilder.layers.scaled_tanh import ScaledTanh


def test_lecun_defaults_map_plus_minus_one_to_themselves():
    layer = ScaledTanh()
    assert layer.amplitude == 1.7159 and layer.slope == 2.0 / 3.0
    out = keras.ops.convert_to_numpy(layer(np.array([[-1.0, 0.0, 1.0]], "float32")))
    np.testing.assert_allclose(out, [[-1.0, 0.0, 1.0]], atol=1e-4)


@pytest.mark.parametrize("amplitude, slope", [(1.7159, 2.0 / 3.0), (2.0, 0.5), (-1.0, 3.0)])
def test_values_and_shape(amplitude, slope):
    x = np.random.default_rng(0).normal(size=(3, 4, 5)).astype("float32") * 3
    out = _testing.assert_output_shape(ScaledTanh(amplitude, slope), x)
    np.testing.assert_allclose(out, amplitude * np.tanh(slope * x), rtol=1e-6, atol=1e-6)


def test_config_round_trip():
    clone = _testing.assert_config_round_trip(ScaledTanh(amplitude=2.0, slope=0.25))
    assert (clone.amplitude, clone.slope) == (2.0, 0.25)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"amplitude": math.inf}, "`amplitude` must be a finite number, received: inf"),
        ({"slope": None}, "`slope` must be a finite number, received: None"),
    ],
)
def test_rejects_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        ScaledTanh(**kwargs)


def test_save_load_and_gradients(tmp_path):
    x = np.random.default_rng(1).normal(size=(8, 4)).astype("float32")
    y = np.full((8, 2), 0.5, "float32")
    inputs = keras.Input(shape=(4,))
    outputs = ScaledTanh()(keras.layers.Dense(2, name="dense")(inputs))
    model = keras.Model(inputs, outputs)
    _testing.assert_save_load_identical(model, x, tmp_path)
    before, after = _testing.fit_two_steps(model, x, y)
    before, after = _testing.weights_by_path(model, before), _testing.weights_by_path(model, after)
    assert not np.allclose(before["dense/kernel"], after["dense/kernel"])
