import keras
import numpy as np
import pytest

from kbuilder.layers import _testing
from kbuilder.layers.position_embedding import PositionEmbedding


def test_adds_one_learned_vector_per_position():
    x = np.random.default_rng(0).normal(size=(3, 5, 4)).astype("float32")
    layer = PositionEmbedding(embeddings_initializer="random_normal")
    out = _testing.assert_output_shape(layer, x)
    table = keras.ops.convert_to_numpy(layer.embeddings)
    assert table.shape == (5, 4)
    np.testing.assert_allclose(out, x + table[None], rtol=1e-6)


def test_table_of_an_image_input_has_its_three_axes():
    layer = PositionEmbedding()
    layer.build((None, 3, 3, 2))
    assert tuple(layer.embeddings.shape) == (3, 3, 2)


def test_refuses_an_unknown_length():
    with pytest.raises(
        ValueError, match=r"shape \(without the batch axis\) is known, received: \(None, None, 4\)"
    ):
        PositionEmbedding().build((None, None, 4))


def test_config_round_trip():
    clone = _testing.assert_config_round_trip(
        PositionEmbedding(embeddings_initializer=keras.initializers.RandomNormal(stddev=0.02))
    )
    assert clone.embeddings_initializer.stddev == 0.02


def test_save_load_and_gradients(tmp_path):
    x = np.random.default_rng(1).normal(size=(8, 6, 4)).astype("float32")
    y = np.full((8, 6, 4), 0.5, "float32")
    model = _testing.single_layer_model(PositionEmbedding(name="pos"), (6, 4))
    _testing.assert_save_load_identical(model, x, tmp_path)
    before, after = _testing.fit_two_steps(model, x, y)
    before, after = _testing.weights_by_path(model, before), _testing.weights_by_path(model, after)
    assert not np.allclose(before["pos/embeddings"], after["pos/embeddings"])
