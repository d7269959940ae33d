"""LeNet-5's trainable sub-sampling layers S2 and S4 (LeCun et al. 1998)."""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops

from kbuilder.layers import _validation as check

_MODES = ("sum", "average")


@keras.saving.register_keras_serializable(package="kbuilder")
class TrainableSubsampling(keras.layers.Layer):
    """Non-overlapping pooling with one trainable coefficient and bias per map.

    For each channel `c` and each pooling window `W` (channels-last input):

        pooled = sum_{(i, j) in W} x[i, j, c]        (mode="sum", the paper)
        pooled = mean_{(i, j) in W} x[i, j, c]       (mode="average")
        output = activation(coefficient[c] * pooled + bias[c])

    Paper: Y. LeCun, L. Bottou, Y. Bengio, P. Haffner, "Gradient-Based
    Learning Applied to Document Recognition", Proc. IEEE 1998, section II-B:
    "The four inputs to a unit in S2 are added, then multiplied by a trainable
    coefficient, and added to a trainable bias. The result is passed through a
    sigmoidal function." S2 (6 maps) has 12 trainable parameters, S4 (16 maps)
    has 32. The paper's squashing function is `ScaledTanh`; pass
    `activation=None` and follow with a `ScaledTanh` layer to reproduce it.

    Windows are taken with "valid" padding: a trailing row/column that does
    not fill a whole window is dropped, as in LeNet-5 where sizes are even.

    Args:
        pool_size: int or 2 ints, the window size. Default 2.
        strides: int, 2 ints or None (= pool_size, non-overlapping windows).
        mode: "sum" (default, as in the paper) or "average".
        activation: a Keras activation name/callable, or None (linear).
        coefficient_initializer: initializer of the per-channel coefficient
            (None: "ones").
        bias_initializer: initializer of the per-channel bias (None: "zeros").
    """

    def __init__(
        self,
        pool_size: int | tuple[int, int] = 2,
        strides: int | tuple[int, int] | None = None,
        mode: str = "sum",
        activation: str | None = None,
        coefficient_initializer: Any = "ones",
        bias_initializer: Any = "zeros",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.pool_size = check.positive_int_tuple("pool_size", pool_size, 2)
        self.strides = check.positive_int_tuple("strides", self.pool_size if strides is None else strides, 2)
        self.mode = check.choice("mode", mode, _MODES)
        self.activation = check.activation(activation)
        # The defaults make a plain (unit-gain, zero-bias) sum pooling at init.
        self.coefficient_initializer = check.initializer(coefficient_initializer, "ones")
        self.bias_initializer = check.initializer(bias_initializer, "zeros")
        self.input_spec = keras.layers.InputSpec(ndim=4)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        channels = check.channels_of("TrainableSubsampling", input_shape)
        self.input_spec = keras.layers.InputSpec(ndim=4, axes={-1: channels})
        self.coefficient = self.add_weight(
            name="coefficient", shape=(channels,), initializer=self.coefficient_initializer
        )
        self.bias = self.add_weight(name="bias", shape=(channels,), initializer=self.bias_initializer)
        self.built = True

    def call(self, inputs: Any) -> Any:
        # average_pool is the cheapest backend-agnostic window reduction; with
        # "valid" padding every window is full, so sum = mean * window area
        # exactly (no border windows with fewer elements to correct for).
        pooled = ops.average_pool(
            inputs,
            self.pool_size,
            strides=self.strides,
            padding="valid",
            data_format="channels_last",
        )
        if self.mode == "sum":
            pooled = pooled * float(math.prod(self.pool_size))
        # coefficient and bias have shape (C,), which broadcasts over N, H, W.
        return self.activation(pooled * self.coefficient + self.bias)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        batch, height, width, channels = input_shape
        spatial = []
        for size, pool, stride in zip((height, width), self.pool_size, self.strides):
            spatial.append(None if size is None else max(0, (size - pool) // stride + 1))
        return (batch, spatial[0], spatial[1], channels)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "pool_size": self.pool_size,
                "strides": self.strides,
                "mode": self.mode,
                "activation": keras.activations.serialize(self.activation),
                "coefficient_initializer": keras.initializers.serialize(self.coefficient_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            }
        )
        return config
