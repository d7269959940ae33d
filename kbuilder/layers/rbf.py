"""LeNet-5's Euclidean radial basis function output layer (LeCun et al. 1998)."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from kbuilder.layers import _validation as check


@keras.saving.register_keras_serializable(package="kbuilder")
class EuclideanRBF(keras.layers.Layer):
    """Squared Euclidean distance to fixed prototypes, one per output unit.

        y_i = sum_j (x_j - w_ij) ** 2

    Paper: Y. LeCun, L. Bottou, Y. Bengio, P. Haffner, "Gradient-Based
    Learning Applied to Document Recognition", Proc. IEEE 1998, section II-B
    (output layer) and Fig. 3. Each RBF unit measures how far the F6 vector
    (84 = 7 x 12 units) is from its class's parameter vector, which LeCun
    fixed by hand to a stylised 7x12 bitmap of the character, with entries
    +1/-1, and did not train. The model predicts the class whose prototype is
    nearest, i.e. `argmin_i y_i` (a penalty, not a score).

    Here the prototypes are a NON-trainable `(units, input_dim)` weight,
    initialised deterministically from `seed` to random values in {-1, +1}
    (no bitmaps are shipped); they are saved with the model, so a reloaded
    model uses the same ones. For F6=84 -> 10 units: 840 non-trainable params.

    LeCun trained with a loss built on these penalties directly (his eq. 9).
    With `as_logits=True` the layer outputs `-y` instead, so that
    `argmax` of the output is the prediction and it can be fed to
    `softmax` / `SparseCategoricalCrossentropy(from_logits=True)`: softmax of
    `-y` puts the most probability on the nearest prototype.

    Args:
        units: positive int, number of prototypes (classes).
        seed: non-negative int seeding the {-1, +1} prototypes. Default 0.
        as_logits: if True output `-y` (higher is better) instead of `y`.
    """

    def __init__(self, units: int, seed: int = 0, as_logits: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.units = check.positive_int("units", units)
        self.seed = check.non_negative_int("seed", seed)
        if not isinstance(as_logits, bool):
            raise ValueError(f"`as_logits` must be true or false, received: {as_logits!r}")
        self.as_logits = as_logits

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        if len(input_shape) < 2:
            raise ValueError(
                f"EuclideanRBF expects inputs of rank >= 2 (features last), "
                f"received input shape {tuple(input_shape)}"
            )
        input_dim = check.channels_of("EuclideanRBF", input_shape)
        self.input_spec = keras.layers.InputSpec(min_ndim=2, axes={-1: input_dim})
        self.prototypes = self.add_weight(
            name="prototypes",
            shape=(self.units, input_dim),
            initializer=self._sign_initializer,
            trainable=False,
        )
        self.built = True

    def _sign_initializer(self, shape: tuple[int, ...], dtype: Any = None) -> Any:
        # numpy's generator, not a backend RNG: the same seed gives the same
        # prototypes on TensorFlow, JAX and PyTorch.
        signs = np.random.default_rng(self.seed).integers(0, 2, size=shape) * 2 - 1
        return ops.convert_to_tensor(signs, dtype=dtype or "float32")

    def call(self, inputs: Any) -> Any:
        prototypes = ops.cast(self.prototypes, inputs.dtype)
        # ||x - w||^2 = ||x||^2 - 2 x.w + ||w||^2: one matmul instead of a
        # (batch, units, input_dim) difference tensor. Rounding can push an
        # exact match slightly below zero, so clamp: a distance is >= 0.
        x_sq = ops.sum(ops.square(inputs), axis=-1, keepdims=True)
        w_sq = ops.sum(ops.square(prototypes), axis=-1)
        cross = ops.matmul(inputs, ops.transpose(prototypes))
        distances = ops.maximum(x_sq - 2.0 * cross + w_sq, 0.0)
        return -distances if self.as_logits else distances

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"units": self.units, "seed": self.seed, "as_logits": self.as_logits})
        return config
