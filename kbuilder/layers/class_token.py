"""The class token of BERT and ViT (Devlin et al. 2019, [CLS]; Dosovitskiy et al. 2021,
eq. 1, x_class): a learned vector prepended to the sequence, whose output after the
encoder represents the whole input."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kbuilder")
class ClassToken(keras.layers.Layer):
    """Prepends one learned token to a sequence: (batch, N, D) -> (batch, N + 1, D).

    The token has D trainable values, shared by every sample; torchvision's ViT starts it
    at zeros (the default here).

    Args:
        token_initializer: how the token starts (default "zeros").
    """

    def __init__(self, token_initializer: Any = "zeros", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.token_initializer = keras.initializers.get(token_initializer)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        if len(input_shape) != 3 or input_shape[-1] is None:
            raise ValueError(
                "ClassToken needs a (batch, sequence, features) input with known features, "
                f"received: {tuple(input_shape)}"
            )
        self.token = self.add_weight(
            name="token", shape=(1, 1, input_shape[-1]), initializer=self.token_initializer
        )

    def call(self, inputs: Any) -> Any:
        batch = ops.shape(inputs)[0]
        token = ops.broadcast_to(ops.cast(self.token, inputs.dtype), (batch, 1, ops.shape(self.token)[-1]))
        return ops.concatenate([token, inputs], axis=1)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        batch, length, features = input_shape
        return (batch, None if length is None else length + 1, features)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["token_initializer"] = keras.initializers.serialize(self.token_initializer)
        return config
