import re

import keras
import numpy as np
import pytest

from kbuilder.layers import _testing
from kbuilder.layers.layer_scale import LayerScale
from kbuilder.spec.layers import custom as spec


@pytest.mark.parametrize("shape", [(2, 5, 5, 4), (3, 7, 6), (4, 9)])
def test_each_channel_is_multiplied_by_its_factor(shape):
    x = np.random.default_rng(0).normal(size=shape).astype("float32")
    layer = LayerScale()
    layer.build(x.shape)
    gamma = np.random.default_rng(1).normal(size=shape[-1]).astype("float32")
    layer.gamma.assign(gamma)
    out = _testing.assert_output_shape(layer, x)
    np.testing.assert_allclose(out, x * gamma, rtol=1e-6)  # broadcast over every axis but the last


def test_starts_at_init_value():
    layer = LayerScale(init_value=0.25)
    x = np.ones((2, 3, 3, 5), "float32")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x)), np.full_like(x, 0.25))
    assert np.all(keras.ops.convert_to_numpy(layer.gamma) == 0.25)


def test_default_is_convnext_1e_6():
    layer = LayerScale()
    layer.build((None, 7, 7, 96))
    assert layer.init_value == 1e-6
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer.gamma), 1e-6)


def test_parameters_and_macs_are_one_per_channel():
    layer = LayerScale()
    layer.build((None, 14, 14, 96))
    assert layer.count_params() == 96 and [w.name for w in layer.trainable_weights] == ["layer_scale"]
    kind = spec.LayerScale()
    shape = (None, 14, 14, 96)
    assert kind.output_shape([shape]) == shape
    assert kind.params([shape]).trainable == 96 and kind.params([shape]).non_trainable == 0
    assert kind.macs([shape], shape) == 14 * 14 * 96  # one multiply per element
    assert kind.field_step([shape]) is None  # pointwise: the receptive field passes through


def test_config_round_trip():
    clone = _testing.assert_config_round_trip(LayerScale(init_value=0.1, name="ls"))
    assert clone.init_value == 0.1 and clone.name == "ls"


@pytest.mark.parametrize("value", [float("inf"), float("nan"), "small", True])
def test_rejects_invalid_init_value(value):
    with pytest.raises(ValueError, match=re.escape("`init_value` must be a finite number")):
        LayerScale(init_value=value)


def test_unknown_channels_are_refused():
    with pytest.raises(ValueError, match="LayerScale needs a known size on axis -1"):
        LayerScale().build((None, 4, None))


def test_save_load_and_gradients(tmp_path):
    x = np.random.default_rng(3).normal(size=(4, 6, 6, 3)).astype("float32")
    y = np.random.default_rng(4).normal(size=(4, 6, 6, 3)).astype("float32")
    model = _testing.single_layer_model(LayerScale(init_value=0.5, name="ls"), (6, 6, 3))
    model.get_layer("ls").gamma.assign(np.array([0.5, -1.0, 2.0], "float32"))
    _testing.assert_save_load_identical(model, x, tmp_path)
    before, after = _testing.fit_two_steps(model, x, y)
    before, after = _testing.weights_by_path(model, before), _testing.weights_by_path(model, after)
    assert np.all(before["ls/layer_scale"] != after["ls/layer_scale"])
