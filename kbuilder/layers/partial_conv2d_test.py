import re

import keras
import numpy as np
import pytest

from kbuilder.layers import _testing
from kbuilder.layers.partial_conv2d import LENET5_C3_CONNECTIONS, PartialConv2D
from kbuilder.spec.layers import custom as spec


def correlate_valid(image: np.ndarray, kernel: np.ndarray, stride: tuple[int, int]) -> np.ndarray:
    """Single-channel 2D cross-correlation (what Keras calls conv), valid, strided."""
    n, h, w = image.shape
    kh, kw = kernel.shape
    oh, ow = (h - kh) // stride[0] + 1, (w - kw) // stride[1] + 1
    out = np.zeros((n, oh, ow))
    for i in range(oh):
        for j in range(ow):
            patch = image[:, i * stride[0] : i * stride[0] + kh, j * stride[1] : j * stride[1] + kw]
            out[:, i, j] = (patch * kernel).sum(axis=(1, 2))
    return out


def same_pad(x: np.ndarray, kernel_size, stride) -> np.ndarray:
    """TF/Keras "same" padding: extra row/column goes after."""
    pads = [(0, 0)]
    for size, k, s in zip(x.shape[1:3], kernel_size, stride):
        total = max((-(-size // s) - 1) * s + k - size, 0)
        pads.append((total // 2, total - total // 2))
    return np.pad(x, pads + [(0, 0)])


def manual_partial_conv(x, kernel, bias, table, stride=(1, 1), padding="valid"):
    """Each output map = sum over its connected inputs of one 2D correlation."""
    if padding == "same":
        x = same_pad(x, kernel.shape[:2], stride)
    outputs, k = [], 0
    for inputs in table:
        acc = 0.0
        for i in inputs:
            acc = acc + correlate_valid(x[..., i].astype("float64"), kernel[:, :, k], stride)
            k += 1
        outputs.append(acc)
    return np.stack(outputs, axis=-1) + bias


def test_lenet5_table_i():
    table = LENET5_C3_CONNECTIONS
    assert [len(t) for t in table] == [3] * 6 + [4] * 9 + [6]
    # Rows of LeCun et al. 1998, Table I: which C3 maps each S2 map feeds.
    rows = {s2: [c3 for c3, inputs in enumerate(table) if s2 in inputs] for s2 in range(6)}
    assert rows == {
        0: [0, 4, 5, 6, 9, 10, 11, 12, 14, 15],
        1: [0, 1, 5, 6, 7, 10, 11, 12, 13, 15],
        2: [0, 1, 2, 6, 7, 8, 11, 13, 14, 15],
        3: [1, 2, 3, 6, 7, 8, 9, 12, 14, 15],
        4: [2, 3, 4, 7, 8, 9, 10, 12, 13, 15],
        5: [3, 4, 5, 8, 9, 10, 11, 13, 14, 15],
    }


def test_lenet5_c3_has_1516_params_and_matches_manual_convolution():
    layer = PartialConv2D(16, 5, connections="lenet5_c3")
    x = np.random.default_rng(0).normal(size=(2, 14, 14, 6)).astype("float32")
    out = _testing.assert_output_shape(layer, x)
    assert out.shape == (2, 10, 10, 16)
    assert layer.count_params() == 1516
    assert tuple(layer.kernel.shape) == (5, 5, 60)
    c3 = spec.PartialConv2D(filters=16, kernel_size=5, connections="lenet5_c3")
    assert c3.macs([(None, 14, 14, 6)], (None, 10, 10, 16)) == 10 * 10 * 60 * 25  # the kind's own count
    assert c3.connection_count() == sum(len(maps) for maps in LENET5_C3_CONNECTIONS)
    rng = np.random.default_rng(1)
    layer.bias.assign(rng.normal(size=16).astype("float32"))
    kernel = keras.ops.convert_to_numpy(layer.kernel)
    bias = keras.ops.convert_to_numpy(layer.bias)
    out = keras.ops.convert_to_numpy(layer(x))
    expected = manual_partial_conv(x, kernel, bias, LENET5_C3_CONNECTIONS)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("strides, padding", [(1, "same"), ((2, 1), "valid"), (2, "same")])
def test_custom_table_strides_and_padding(strides, padding):
    table = [[2, 0], [1], [0, 1, 2, 3]]
    layer = PartialConv2D(
        3, (3, 2), table, strides=strides, padding=padding, activation="relu", bias_initializer="ones"
    )
    x = np.random.default_rng(2).normal(size=(2, 7, 8, 4)).astype("float32")
    out = _testing.assert_output_shape(layer, x)
    assert layer.count_params() == 7 * 3 * 2 + 3
    kernel = keras.ops.convert_to_numpy(layer.kernel)
    stride = (strides, strides) if isinstance(strides, int) else strides
    expected = np.maximum(manual_partial_conv(x, kernel, np.ones(3), table, stride, padding), 0)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_dense_kernel_is_zero_where_unconnected():
    layer = PartialConv2D(2, 1, [[1], [0, 2]], use_bias=False, kernel_initializer="ones")
    layer.build((None, 4, 4, 3))
    assert layer.count_params() == 3
    dense = keras.ops.convert_to_numpy(layer.dense_kernel())[0, 0]
    np.testing.assert_array_equal(dense, [[0, 1], [1, 0], [0, 1]])


def test_none_initializers_mean_the_defaults():
    config = PartialConv2D(2, 3, [[0], [1]], kernel_initializer=None, bias_initializer=None).get_config()
    assert config["kernel_initializer"]["class_name"] == "GlorotUniform"
    assert config["bias_initializer"]["class_name"] == "Zeros"


def test_config_round_trip():
    for connections in ("lenet5_c3", [[0, 1, 2]] * 16):
        layer = PartialConv2D(16, 5, connections, strides=(1, 1), activation="tanh")
        clone = _testing.assert_config_round_trip(layer)
        assert clone.get_config()["connections"] == (
            connections if isinstance(connections, str) else [[0, 1, 2]] * 16
        )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"filters": 0}, "`filters` must be a positive integer, received: 0"),
        (
            {"kernel_size": (5,)},
            "`kernel_size` must be a positive integer or a list of 2 positive integers, received: (5,)",
        ),
        ({"connections": "lenet5"}, "one of ['lenet5_c3'], received: 'lenet5'"),
        ({"connections": [[0]] * 3}, "one entry per output map (`filters`=2), received 3 entries"),
        (
            {"connections": [[0], []]},
            "`connections[1]` must be a non-empty list of non-negative input-channel indices, received: ()",
        ),
        ({"connections": [[0], [1, -1]]}, "`connections[1]` must be a non-empty list"),
        ({"connections": [[0, 0], [1]]}, "`connections[0]` lists an input channel twice, received: [0, 0]"),
        ({"connections": 3}, "received: 3"),
        ({"padding": "full"}, "`padding` must be one of 'valid', 'same', received: 'full'"),
        ({"use_bias": "yes"}, "`use_bias` must be true or false, received: 'yes'"),
    ],
)
def test_rejects_invalid_arguments(kwargs, message):
    args = {"filters": 2, "kernel_size": 3, "connections": [[0], [1]], **kwargs}
    with pytest.raises(ValueError, match=re.escape(message)):
        PartialConv2D(**args)


def test_rejects_tables_that_do_not_fit_the_input():
    with pytest.raises(ValueError, match="refers to input channel 5, but the input has 3 channels"):
        PartialConv2D(16, 5, "lenet5_c3")(keras.Input(shape=(14, 14, 3)))
    with pytest.raises(ValueError, match="needs 6 input channels"):
        PartialConv2D(16, 5, "lenet5_c3")(keras.Input(shape=(14, 14, 8)))


def test_save_load_and_only_connected_weights_train(tmp_path):
    x = np.random.default_rng(3).normal(size=(4, 14, 14, 6)).astype("float32")
    y = np.random.default_rng(4).normal(size=(4, 10, 10, 16)).astype("float32")
    model = _testing.single_layer_model(PartialConv2D(16, 5, "lenet5_c3", name="c3"), (14, 14, 6))
    _testing.assert_save_load_identical(model, x, tmp_path)
    layer = model.get_layer("c3")
    dense_before = keras.ops.convert_to_numpy(layer.dense_kernel())
    before, after = _testing.fit_two_steps(model, x, y)
    before, after = _testing.weights_by_path(model, before), _testing.weights_by_path(model, after)
    assert np.all(before["c3/kernel"] != after["c3/kernel"])
    assert np.all(before["c3/bias"] != after["c3/bias"])
    dense_after = keras.ops.convert_to_numpy(layer.dense_kernel())
    unconnected = np.ones((6, 16), bool)
    for out_map, inputs in enumerate(LENET5_C3_CONNECTIONS):
        unconnected[list(inputs), out_map] = False
    assert unconnected.sum() == 6 * 16 - 60
    for dense in (dense_before, dense_after):
        np.testing.assert_array_equal(dense[:, :, unconnected], 0)
        assert np.all(dense[:, :, ~unconnected] != 0)
