"""Learned positional embeddings (Vaswani et al. 2017, section 3.5, the learned variant;
Dosovitskiy et al. 2021, eq. 1, ViT's E_pos)."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kbuilder")
class PositionEmbedding(keras.layers.Layer):
    """Adds a trainable table with the input's shape (batch axis aside) to the input:
    `x + E_pos`, one learned vector per position.

    On a sequence of N tokens of D features the table is (N, D), as ViT's E_pos over its
    197 tokens (196 patches and the class token) of 768 features. The positions are the
    input's: its shape (without the batch axis) must be fully known when the layer is built.

    Args:
        embeddings_initializer: how the table starts (default "glorot_uniform"; ViT and torchvision
            draw from a normal distribution with stddev 0.02).
    """

    def __init__(self, embeddings_initializer: Any = "glorot_uniform", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)
        self.supports_masking = True

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        table = tuple(input_shape[1:])
        if not table or any(d is None for d in table):
            raise ValueError(
                "PositionEmbedding needs an input whose shape (without the batch axis) is known, "
                f"received: {tuple(input_shape)}"
            )
        self.embeddings = self.add_weight(
            name="embeddings", shape=table, initializer=self.embeddings_initializer
        )

    def call(self, inputs: Any) -> Any:
        return inputs + ops.cast(self.embeddings, inputs.dtype)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["embeddings_initializer"] = keras.initializers.serialize(self.embeddings_initializer)
        return config
