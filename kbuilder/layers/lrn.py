"""Local Response Normalization across channels (AlexNet, Krizhevsky et al. 2012)."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from kbuilder.layers import _validation as check


@keras.saving.register_keras_serializable(package="kbuilder")
class LocalResponseNormalization(keras.layers.Layer):
    """Local Response Normalization over the last (channel) axis.

    Same semantics as `tf.nn.local_response_normalization`, for every position
    and channel `d` of a channels-last input `x` with `C` channels:

        sqr_sum[..., d] = sum(x[..., max(0, d - r) : min(C, d + r + 1)] ** 2)
        output = x / (bias + alpha * sqr_sum) ** beta

    with `r = depth_radius`, i.e. a window of `2r + 1` channels clipped at the
    channel edges.

    Paper: A. Krizhevsky, I. Sutskever, G. Hinton, "ImageNet Classification
    with Deep Convolutional Neural Networks", NIPS 2012, section 3.3, which
    uses k=2, n=5, alpha=1e-4, beta=0.75. In this layer's (TensorFlow's)
    convention that is `depth_radius=2` (n = 2r + 1), `bias=2.0`,
    `alpha=1e-4`, `beta=0.75`: alpha is NOT divided by the window size.
    PyTorch's `nn.LocalResponseNorm(size, alpha, beta, k)` divides alpha by
    `size`, so its `alpha=1e-4` corresponds to `alpha=2e-5` here.

    Args:
        depth_radius: non-negative int, half-width `r` of the channel window.
        bias: float > 0, the additive constant `k` (keeps the base positive).
        alpha: float >= 0, the scale of the squared sum.
        beta: float >= 0, the exponent.
    """

    def __init__(
        self, depth_radius: int = 5, bias: float = 1.0, alpha: float = 1.0, beta: float = 0.5, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.depth_radius = check.non_negative_int("depth_radius", depth_radius)
        # bias > 0 and alpha >= 0 keep the base of the power strictly positive,
        # so a zero input never produces 0 ** -beta = inf or a NaN.
        self.bias = check.finite_float("bias", bias, strictly_above=0.0)
        self.alpha = check.finite_float("alpha", alpha, minimum=0.0)
        self.beta = check.finite_float("beta", beta, minimum=0.0)
        self.supports_masking = True

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        if len(input_shape) < 2:
            raise ValueError(
                "LocalResponseNormalization expects inputs of rank >= 2 with "
                f"channels last, received input shape {tuple(input_shape)}"
            )
        self._channels = check.channels_of("LocalResponseNormalization", input_shape)
        self.input_spec = keras.layers.InputSpec(min_ndim=2, axes={-1: self._channels})
        self.built = True

    def call(self, inputs: Any) -> Any:
        channels = self._channels
        # A window wider than the channel axis sees every channel anyway, so
        # clip the radius: the sum below costs O(min(r, C - 1)) tensor adds.
        radius = min(self.depth_radius, channels - 1)
        squared = ops.square(inputs)
        if radius > 0:
            # Zero-pad the channel axis by `radius` on both sides; then the
            # window sum for channel d is the sum of the 2r+1 shifted slices
            # padded[..., d + k] for k in [0, 2r]. Zeros stand for the clipped
            # part of the window, which is exactly TF's edge behaviour. This is
            # exact (no cumsum cancellation) and vectorised over all channels.
            pad = [(0, 0)] * (len(inputs.shape) - 1) + [(radius, radius)]
            padded = ops.pad(squared, pad)
            sqr_sum = padded[..., 0:channels]
            for shift in range(1, 2 * radius + 1):
                sqr_sum = sqr_sum + padded[..., shift : shift + channels]
        else:
            sqr_sum = squared
        scale = ops.power(self.bias + self.alpha * sqr_sum, self.beta)
        return inputs / scale

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "depth_radius": self.depth_radius,
                "bias": self.bias,
                "alpha": self.alpha,
                "beta": self.beta,
            }
        )
        return config
