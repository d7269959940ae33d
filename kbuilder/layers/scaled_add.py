"""Scaled residual sum: `inputs[0] + scale * inputs[1]` (Inception-ResNet)."""

from __future__ import annotations

from typing import Any

import keras

from kbuilder.layers import _validation as check


@keras.saving.register_keras_serializable(package="kbuilder")
class ScaledAdd(keras.layers.Layer):
    """Adds the second input, times a fixed `scale`, to the first: `x + scale * r`.

    Inception-ResNet scales each residual branch before adding it to the shortcut (0.17,
    0.1 and 0.2 for its three block types) to keep training of very deep residual
    networks stable: C. Szegedy, S. Ioffe, V. Vanhoucke, A. Alemi, "Inception-v4,
    Inception-ResNet and the Impact of Residual Connections on Learning", AAAI 2017,
    section 3.3. The same arithmetic, in the same order, as keras.applications'
    InceptionResNetV2 (its `CustomScaleLayer`), so an imported model gives equal outputs.

    Args:
        scale: the finite factor of the second input. No weights.
    """

    def __init__(self, scale: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scale = check.finite_float("scale", scale)

    def call(self, inputs: Any) -> Any:
        shortcut, residual = inputs
        return keras.ops.add(shortcut, keras.ops.multiply(residual, self.scale))

    def compute_output_shape(self, input_shape: Any) -> Any:
        return tuple(input_shape[0])

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"scale": self.scale})
        return config
