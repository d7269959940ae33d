"""Layer scale: a learned per-channel multiplier (ConvNeXt, CaiT)."""

from __future__ import annotations

from typing import Any

import keras

from kbuilder.layers import _validation as check


@keras.saving.register_keras_serializable(package="kbuilder")
class LayerScale(keras.layers.Layer):
    """Multiplies each channel (the last axis) by its own trainable factor.

    `output[..., c] = gamma[c] * x[..., c]`, with every `gamma[c]` starting at
    `init_value`. A residual branch scaled this way starts close to the identity
    mapping and lets training grow the branch's contribution.

    Papers: H. Touvron, M. Cord, A. Sablayrolles, G. Synnaeve, H. Jégou, "Going
    deeper with Image Transformers" (CaiT), ICCV 2021, section 3 ("LayerScale",
    a diagonal matrix initialised to a small epsilon); Z. Liu, H. Mao, C.-Y. Wu,
    C. Feichtenhofer, T. Darrell, S. Xie, "A ConvNet for the 2020s" (ConvNeXt),
    CVPR 2022, which uses it in every block with 1e-6. The weight, of shape (C,),
    is named `layer_scale` as torchvision's ConvNeXt names its parameter (there
    of shape (C, 1, 1), channels first).

    Args:
        init_value: the finite initial value of every factor (default 1e-6).
    """

    def __init__(self, init_value: float = 1e-6, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.init_value = check.finite_float("init_value", init_value)
        self.supports_masking = True

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        channels = check.channels_of("LayerScale", input_shape)
        self.input_spec = keras.layers.InputSpec(min_ndim=2, axes={-1: channels})
        self.gamma = self.add_weight(
            name="layer_scale", shape=(channels,), initializer=keras.initializers.Constant(self.init_value)
        )
        self.built = True

    def call(self, inputs: Any) -> Any:
        # gamma has shape (C,): it broadcasts over every axis but the last.
        return inputs * self.gamma

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"init_value": self.init_value})
        return config
