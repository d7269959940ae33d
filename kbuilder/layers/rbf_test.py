import re

import keras
import numpy as np
import pytest

from kbuilder.layers import _testing
from kbuilder.layers.rbf import EuclideanRBF
from kbuilder.spec.layers import custom as spec


def reference(x: np.ndarray, prototypes: np.ndarray) -> np.ndarray:
    diff = x[..., None, :].astype("float64") - prototypes.astype("float64")
    return (diff**2).sum(axis=-1)


def test_lenet5_output_layer_params_and_prototypes():
    layer = EuclideanRBF(10)
    layer.build((None, 84))
    assert layer.count_params() == 840
    assert layer.trainable_weights == []
    assert [w.name for w in layer.non_trainable_weights] == ["prototypes"]
    prototypes = keras.ops.convert_to_numpy(layer.prototypes)
    assert prototypes.shape == (10, 84)
    assert set(np.unique(prototypes)) == {-1.0, 1.0}
    assert spec.EuclideanRBF(units=10).macs([(None, 84)], (None, 10)) == 840  # the kind's own count


def test_prototypes_are_deterministic_per_seed():
    def prototypes(seed):
        layer = EuclideanRBF(10, seed=seed)
        layer.build((None, 84))
        return keras.ops.convert_to_numpy(layer.prototypes)

    np.testing.assert_array_equal(prototypes(7), prototypes(7))
    assert not np.array_equal(prototypes(7), prototypes(8))


@pytest.mark.parametrize("shape", [(4, 84), (2, 3, 12)])
def test_values_match_squared_distances(shape):
    x = np.random.default_rng(0).normal(size=shape).astype("float32")
    layer = EuclideanRBF(10, seed=3)
    out = _testing.assert_output_shape(layer, x)
    prototypes = keras.ops.convert_to_numpy(layer.prototypes)
    np.testing.assert_allclose(out, reference(x, prototypes), rtol=1e-5, atol=1e-4)
    logits = keras.ops.convert_to_numpy(EuclideanRBF(10, seed=3, as_logits=True)(x))
    np.testing.assert_allclose(logits, -out, rtol=1e-6, atol=1e-6)


def test_a_prototype_is_at_distance_zero_and_is_predicted():
    layer = EuclideanRBF(5, seed=1)
    layer.build((None, 12))
    prototypes = keras.ops.convert_to_numpy(layer.prototypes)
    out = keras.ops.convert_to_numpy(layer(prototypes[[3, 0]]))
    assert out[0, 3] == 0.0 and out[1, 0] == 0.0
    assert np.all(out >= 0)
    np.testing.assert_array_equal(out.argmin(axis=-1), [3, 0])


def test_config_round_trip():
    clone = _testing.assert_config_round_trip(EuclideanRBF(10, seed=42, as_logits=True))
    assert (clone.units, clone.seed, clone.as_logits) == (10, 42, True)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"units": 0}, "`units` must be a positive integer, received: 0"),
        ({"units": 10, "seed": -3}, "`seed` must be a non-negative integer, received: -3"),
        ({"units": 10, "as_logits": 1}, "`as_logits` must be true or false, received: 1"),
    ],
)
def test_rejects_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        EuclideanRBF(**kwargs)


def test_save_load_and_prototypes_do_not_train(tmp_path):
    x = np.random.default_rng(1).normal(size=(8, 6)).astype("float32")
    y = np.random.default_rng(2).integers(0, 10, size=(8,))
    inputs = keras.Input(shape=(6,))
    hidden = keras.layers.Dense(84, activation="tanh", name="f6")(inputs)
    outputs = EuclideanRBF(10, as_logits=True, name="rbf")(hidden)
    model = keras.Model(inputs, outputs)
    loaded = _testing.assert_save_load_identical(model, x, tmp_path)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(loaded.get_layer("rbf").prototypes),
        keras.ops.convert_to_numpy(model.get_layer("rbf").prototypes),
    )
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=0.1),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    before = {w.path: keras.ops.convert_to_numpy(w).copy() for w in model.weights}
    model.fit(x, y, batch_size=8, epochs=2, verbose=0, shuffle=False)
    after = {w.path: keras.ops.convert_to_numpy(w) for w in model.weights}
    assert not np.allclose(before["f6/kernel"], after["f6/kernel"])
    np.testing.assert_array_equal(before["rbf/prototypes"], after["rbf/prototypes"])
