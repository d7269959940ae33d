"""Taking one token of a sequence: ViT's classifier reads the class token's output
(Dosovitskiy et al. 2021, eq. 4: y = LN(z_L^0)), BERT's reads [CLS]."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from kbuilder.layers import _validation as check


@keras.saving.register_keras_serializable(package="kbuilder")
class SelectToken(keras.layers.Layer):
    """One position of a sequence: (batch, N, D...) -> (batch, D...), `x[:, index]`.

    Args:
        index: the position (0: the first, where `ClassToken` puts its token; negative
            counts from the end, -1 is the last).
    """

    def __init__(self, index: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.index = check.integer("index", index)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        length = input_shape[1] if len(input_shape) >= 3 else None
        if len(input_shape) < 3 or (length is not None and not -length <= self.index < length):
            raise ValueError(
                f"SelectToken(index={self.index}) needs a (batch, sequence, features) input "
                f"with that position, received: {tuple(input_shape)}"
            )

    def call(self, inputs: Any) -> Any:
        return ops.take(inputs, self.index, axis=1)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return (input_shape[0], *input_shape[2:])

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["index"] = self.index
        return config
