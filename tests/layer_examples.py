"""One example per registered layer kind: spec arguments, input shapes, and the same layer
written directly in Keras. `test_registry.py` fails for a kind that has no example, so a
new kind is tested the moment it is registered."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class Example:
    args: Any
    shapes: list[list[int]]
    keras: Callable[[list[Any]], Any]  # Keras inputs -> output tensor
    dtype: str = "float32"


def _layers():
    import keras

    return keras.layers


def _custom():
    import kbuilder.layers as custom

    return custom


def _one(make):
    return lambda xs: make()(xs[0])


def _merge(make):
    return lambda xs: make()(xs)


def _attention(**kwargs):
    """Keras's MultiHeadAttention on the example's inputs: (query,) is self-attention."""
    return lambda xs: _layers().MultiHeadAttention(**kwargs)(xs[0], *(xs[1:] or [xs[0]]))


def _residual(xs):
    L = _layers()
    body = L.Conv2D(4, 3, padding="same")(xs[0])
    return L.Activation("relu")(L.Add()([body, xs[0]]))


def _projection_residual(xs):
    L = _layers()
    body = L.Conv2D(8, 3, strides=2, padding="same")(xs[0])
    short = L.BatchNormalization()(L.Conv2D(8, 1, strides=2)(xs[0]))
    return L.Add()([body, short])


def _branches(xs):
    L = _layers()
    return L.Concatenate()([L.Conv2D(2, 1)(xs[0]), L.MaxPooling2D(3, 1, padding="same")(xs[0])])


def _inception(xs):
    L = _layers()
    x = xs[0]

    def conv(f, k, t):
        return L.Conv2D(f, k, padding="same", activation="relu")(t)

    return L.Concatenate()(
        [
            conv(4, 1, x),
            conv(6, 3, conv(3, 1, x)),
            conv(2, 5, conv(1, 1, x)),
            conv(2, 1, L.MaxPooling2D(3, 1, padding="same")(x)),
        ]
    )


def _repeat(xs):
    L = _layers()
    x = xs[0]
    for _ in range(3):
        x = L.Dense(5, activation="relu")(x)
    return x


IMG = [[12, 12, 4]]
SEQ = [[20, 6]]
VEC = [[16]]
PAIR_IMG = [[8, 8, 4], [8, 8, 4]]

EXAMPLES: dict[str, Example] = {
    "dense": Example(
        {
            "units": 7,
            "activation": "relu",
            "kernel_regularizer": {"l2": 1e-4},
            "kernel_constraint": {"max_norm": 3},
        },
        VEC,
        _one(lambda: _layers().Dense(7, activation="relu")),
    ),
    "activation": Example("tanh", VEC, _one(lambda: _layers().Activation("tanh"))),
    "relu": Example({"max_value": 6.0}, VEC, _one(lambda: _layers().ReLU(max_value=6.0))),
    "leaky_relu": Example(0.1, VEC, _one(lambda: _layers().LeakyReLU(negative_slope=0.1))),
    "elu": Example({"alpha": 0.5}, VEC, _one(lambda: _layers().ELU(alpha=0.5))),
    "prelu": Example({"shared_axes": [1, 2]}, IMG, _one(lambda: _layers().PReLU(shared_axes=[1, 2]))),
    "softmax": Example(None, VEC, _one(lambda: _layers().Softmax())),
    "dropout": Example(0.5, VEC, _one(lambda: _layers().Dropout(0.5))),
    "spatial_dropout1d": Example(0.2, SEQ, _one(lambda: _layers().SpatialDropout1D(0.2))),
    "spatial_dropout2d": Example(0.2, IMG, _one(lambda: _layers().SpatialDropout2D(0.2))),
    "flatten": Example(None, IMG, _one(lambda: _layers().Flatten())),
    "reshape": Example([6, 96], IMG, _one(lambda: _layers().Reshape((6, 96)))),
    "rescaling": Example(
        {"scale": 0.00392156862745098, "offset": -0.5},
        IMG,
        _one(lambda: _layers().Rescaling(1 / 255, offset=-0.5)),
    ),
    "embedding": Example(
        {"input_dim": 100, "output_dim": 8}, [[10]], _one(lambda: _layers().Embedding(100, 8)), dtype="int32"
    ),
    "conv1d": Example(
        {"filters": 5, "kernel_size": 3, "strides": 2, "padding": "causal"},
        SEQ,
        _one(lambda: _layers().Conv1D(5, 3, strides=2, padding="causal")),
    ),
    "conv2d": Example(
        {
            "filters": 8,
            "kernel_size": [3, 5],
            "strides": 2,
            "padding": "same",
            "groups": 2,
            "kernel_initializer": {"name": "random_normal", "stddev": 0.01},
        },
        IMG,
        _one(lambda: _layers().Conv2D(8, (3, 5), strides=2, padding="same", groups=2)),
    ),
    "depthwise_conv2d": Example(
        {"kernel_size": 3, "depth_multiplier": 2},
        IMG,
        _one(lambda: _layers().DepthwiseConv2D(3, depth_multiplier=2)),
    ),
    "separable_conv2d": Example(
        {"filters": 6, "kernel_size": 3, "dilation_rate": 2},
        IMG,
        _one(lambda: _layers().SeparableConv2D(6, 3, dilation_rate=2)),
    ),
    "zero_padding1d": Example(2, SEQ, _one(lambda: _layers().ZeroPadding1D(2))),
    "zero_padding2d": Example([[1, 2], [3, 4]], IMG, _one(lambda: _layers().ZeroPadding2D(((1, 2), (3, 4))))),
    "upsampling2d": Example(2, IMG, _one(lambda: _layers().UpSampling2D(2))),
    "conv2d_transpose": Example(
        {"filters": 6, "kernel_size": 3, "strides": 2, "padding": "same", "output_padding": 1},
        IMG,
        _one(lambda: _layers().Conv2DTranspose(6, 3, strides=2, padding="same", output_padding=1)),
    ),
    "conv1d_transpose": Example(
        {"filters": 3, "kernel_size": 4, "strides": 2},
        SEQ,
        _one(lambda: _layers().Conv1DTranspose(3, 4, strides=2)),
    ),
    "cropping1d": Example([1, 3], SEQ, _one(lambda: _layers().Cropping1D((1, 3)))),
    "cropping2d": Example([[1, 2], [0, 3]], IMG, _one(lambda: _layers().Cropping2D(((1, 2), (0, 3))))),
    "max_pooling2d": Example({"pool_size": 3, "strides": 2}, IMG, _one(lambda: _layers().MaxPooling2D(3, 2))),
    "average_pooling2d": Example(2, IMG, _one(lambda: _layers().AveragePooling2D(2))),
    "max_pooling1d": Example(2, SEQ, _one(lambda: _layers().MaxPooling1D(2))),
    "average_pooling1d": Example(
        {"pool_size": 3, "padding": "same"}, SEQ, _one(lambda: _layers().AveragePooling1D(3, padding="same"))
    ),
    "adaptive_average_pooling2d": Example(
        [6, 6], [[13, 13, 4]], _one(lambda: _layers().AdaptiveAveragePooling2D((6, 6)))
    ),
    "adaptive_max_pooling2d": Example(3, IMG, _one(lambda: _layers().AdaptiveMaxPooling2D(3))),
    "global_average_pooling2d": Example(None, IMG, _one(lambda: _layers().GlobalAveragePooling2D())),
    "global_max_pooling2d": Example(
        {"keepdims": True}, IMG, _one(lambda: _layers().GlobalMaxPooling2D(keepdims=True))
    ),
    "global_average_pooling1d": Example(None, SEQ, _one(lambda: _layers().GlobalAveragePooling1D())),
    "global_max_pooling1d": Example(None, SEQ, _one(lambda: _layers().GlobalMaxPooling1D())),
    "batch_norm": Example({"momentum": 0.9}, IMG, _one(lambda: _layers().BatchNormalization(momentum=0.9))),
    "layer_norm": Example(None, SEQ, _one(lambda: _layers().LayerNormalization())),
    "normalization": Example(None, [[6, 6, 3]], _one(lambda: _layers().Normalization())),
    "hard_sigmoid": Example(None, IMG, _one(lambda: _layers().Activation("hard_sigmoid"))),
    "hard_swish": Example(None, IMG, _one(lambda: _layers().Activation("hard_silu"))),
    "concat": Example({"axis": -1}, PAIR_IMG, _merge(lambda: _layers().Concatenate())),
    "add": Example(None, PAIR_IMG, _merge(lambda: _layers().Add())),
    "subtract": Example(None, PAIR_IMG, _merge(lambda: _layers().Subtract())),
    "multiply": Example(None, PAIR_IMG, _merge(lambda: _layers().Multiply())),
    "average": Example(None, PAIR_IMG, _merge(lambda: _layers().Average())),
    "maximum": Example(None, PAIR_IMG, _merge(lambda: _layers().Maximum())),
    "scaled_add": Example({"scale": 0.17}, PAIR_IMG, _merge(lambda: _custom().ScaledAdd(0.17))),
    "lrn": Example(
        {"depth_radius": 2, "bias": 2.0, "alpha": 1e-4, "beta": 0.75},
        IMG,
        _one(lambda: _custom().LocalResponseNormalization(2, 2.0, 1e-4, 0.75)),
    ),
    "maxout": Example(2, VEC, _one(lambda: _custom().Maxout(2))),
    "scaled_tanh": Example(None, VEC, _one(lambda: _custom().ScaledTanh())),
    "trainable_subsampling": Example(
        {"mode": "average"}, IMG, _one(lambda: _custom().TrainableSubsampling(mode="average"))
    ),
    "partial_conv2d": Example(
        {"filters": 16, "kernel_size": 5, "connections": "lenet5_c3"},
        [[14, 14, 6]],
        _one(lambda: _custom().PartialConv2D(16, 5, "lenet5_c3")),
    ),
    "euclidean_rbf": Example(10, [[84]], _one(lambda: _custom().EuclideanRBF(10))),
    "layer_scale": Example({"init_value": 0.5}, IMG, _one(lambda: _custom().LayerScale(0.5))),
    "multi_head_attention": Example(
        {"num_heads": 2, "key_dim": 3, "dropout": 0.1}, SEQ, _attention(num_heads=2, key_dim=3, dropout=0.1)
    ),
    "position_embedding": Example(None, SEQ, _one(lambda: _custom().PositionEmbedding())),
    "class_token": Example(
        {"token_initializer": "ones"}, SEQ, _one(lambda: _custom().ClassToken(token_initializer="ones"))
    ),
    "select_token": Example(-1, SEQ, _one(lambda: _custom().SelectToken(-1))),
    "input": Example({"shape": [5]}, [], lambda xs: _input_example()),
    "residual": Example(
        {"layers": [{"conv2d": {"filters": 4, "kernel_size": 3, "padding": "same"}}], "activation": "relu"},
        [[8, 8, 4]],
        _residual,
    ),
    "branches": Example(
        {
            "paths": {
                "a": [{"conv2d": {"filters": 2, "kernel_size": 1}}],
                "b": [{"max_pooling2d": {"pool_size": 3, "strides": 1, "padding": "same"}}],
            }
        },
        IMG,
        _branches,
    ),
    "inception": Example(
        {"conv1x1": 4, "conv3x3_reduce": 3, "conv3x3": 6, "conv5x5_reduce": 1, "conv5x5": 2, "pool_proj": 2},
        IMG,
        _inception,
    ),
    "repeat": Example({"times": 3, "layers": [{"dense": {"units": 5, "activation": "relu"}}]}, VEC, _repeat),
    "block": Example({"use": "mlp"}, VEC, _repeat),
}

# `block` needs a definition; `residual` with a projection shortcut is tested as a variant.
BLOCKS = {
    "mlp": {"layers": [{"repeat": {"times": 3, "layers": [{"dense": {"units": 5, "activation": "relu"}}]}}]}
}
VARIANTS = {
    "residual_projection": (
        "residual",
        Example(
            {
                "layers": [{"conv2d": {"filters": 8, "kernel_size": 3, "strides": 2, "padding": "same"}}],
                "shortcut": "projection",
            },
            [[8, 8, 4]],
            _projection_residual,
        ),
    ),
    "normalization_fixed": (
        "normalization",
        Example(
            {"mean": [0.485, 0.456, 0.406], "variance": [0.052, 0.05, 0.051]},
            [[6, 6, 3]],
            _one(lambda: _layers().Normalization(mean=[0.485, 0.456, 0.406], variance=[0.052, 0.05, 0.051])),
        ),
    ),
    "dropout_noise_shape": (
        "dropout",
        Example(
            {"rate": 0.2, "noise_shape": [None, 1, 1, 1]},
            IMG,
            _one(lambda: _layers().Dropout(0.2, noise_shape=(None, 1, 1, 1))),
        ),
    ),
    "multiply_broadcast": (
        "multiply",
        Example(None, [[6, 6, 4], [1, 1, 4]], _merge(lambda: _layers().Multiply())),
    ),
    "add_broadcast": ("add", Example(None, [[6, 6, 4], [4]], _merge(lambda: _layers().Add()))),
    "multi_head_attention_cross": (
        "multi_head_attention",
        Example(
            {"num_heads": 2, "key_dim": 3, "value_dim": 4, "output_shape": 8, "use_bias": False},
            [[20, 6], [7, 5]],
            _attention(num_heads=2, key_dim=3, value_dim=4, output_shape=8, use_bias=False),
        ),
    ),
    "multi_head_attention_key": (
        "multi_head_attention",
        Example(
            {"num_heads": 3, "key_dim": 2, "attention_axes": [1]},
            [[5, 4, 6], [7, 4, 5], [7, 4, 3]],
            _attention(num_heads=3, key_dim=2, attention_axes=(1,)),
        ),
    ),
    "global_average_pooling2d_keepdims": (
        "global_average_pooling2d",
        Example({"keepdims": True}, IMG, _one(lambda: _layers().GlobalAveragePooling2D(keepdims=True))),
    ),
}


def _input_example():
    import keras

    return keras.Input((5,))
