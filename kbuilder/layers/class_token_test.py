import keras
import numpy as np
import pytest

from kbuilder.layers import _testing
from kbuilder.layers.class_token import ClassToken


def test_prepends_the_same_token_to_every_sample():
    x = np.random.default_rng(0).normal(size=(3, 5, 4)).astype("float32")
    layer = ClassToken(token_initializer="ones")
    out = _testing.assert_output_shape(layer, x)
    assert out.shape == (3, 6, 4)
    np.testing.assert_array_equal(out[:, 0], np.ones((3, 4)))
    np.testing.assert_array_equal(out[:, 1:], x)


def test_starts_at_zeros_as_torchvision_does():
    layer = ClassToken()
    layer.build((None, 5, 4))
    assert tuple(layer.token.shape) == (1, 1, 4)
    assert not keras.ops.convert_to_numpy(layer.token).any()


@pytest.mark.parametrize("shape", [(None, 4), (None, 2, 2, 4), (None, 3, None)])
def test_refuses_what_is_not_a_sequence_of_known_features(shape):
    with pytest.raises(ValueError, match=r"needs a \(batch, sequence, features\) input"):
        ClassToken().build(shape)


def test_unknown_length_stays_unknown():
    assert ClassToken().compute_output_shape((None, None, 4)) == (None, None, 4)


def test_config_round_trip():
    clone = _testing.assert_config_round_trip(ClassToken(token_initializer="ones"))
    assert isinstance(clone.token_initializer, keras.initializers.Ones)


def test_save_load_and_gradients(tmp_path):
    x = np.random.default_rng(1).normal(size=(8, 6, 4)).astype("float32")
    y = np.full((8, 7, 4), 0.5, "float32")
    model = _testing.single_layer_model(ClassToken(name="cls"), (6, 4))
    _testing.assert_save_load_identical(model, x, tmp_path)
    before, after = _testing.fit_two_steps(model, x, y)
    before, after = _testing.weights_by_path(model, before), _testing.weights_by_path(model, after)
    assert not np.allclose(before["cls/token"], after["cls/token"])
