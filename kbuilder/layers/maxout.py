"""Maxout (Goodfellow et al. 2013), with tensorflow_addons' channel grouping."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from kbuilder.layers import _validation as check


@keras.saving.register_keras_serializable(package="kbuilder")
class Maxout(keras.layers.Layer):
    """Maxout: the maximum over groups of features along one axis.

    The `C` features of `axis` are split into `num_units` groups of
    `k = C / num_units` features, and each output unit is the maximum of its
    group. The grouping is exactly that of `tensorflow_addons.layers.Maxout`,
    which reshapes the axis to `(k, num_units)` and reduces over `k`:

        output[..., j] = max_{i < k} x[..., i * num_units + j],  j < num_units

    so unit `j` takes the strided channels `j, j + num_units, j + 2*num_units...`
    (not a contiguous block). With the preceding Dense/Conv layer's weights
    learned freely the two groupings are equivalent; this one keeps weights
    ported from tensorflow_addons models meaningful.

    Paper: I. Goodfellow, D. Warde-Farley, M. Mirza, A. Courville, Y. Bengio,
    "Maxout Networks", ICML 2013.

    Args:
        num_units: positive int, the size of `axis` in the output; must divide
            the input size `C` of `axis`.
        axis: int, the axis to reduce (not the batch axis 0). Default -1.
    """

    def __init__(self, num_units: int, axis: int = -1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.num_units = check.positive_int("num_units", num_units)
        self.axis = check.integer("axis", axis)
        if self.axis == 0:
            raise ValueError("`axis` must not be the batch axis 0, received: 0")

    def _resolved_axis(self, input_shape: tuple[int | None, ...]) -> int:
        rank = len(input_shape)
        axis = self.axis + rank if self.axis < 0 else self.axis
        if not 1 <= axis < rank:
            raise ValueError(
                f"Maxout `axis`={self.axis} is out of range for input shape "
                f"{tuple(input_shape)} (the batch axis 0 cannot be reduced)"
            )
        return axis

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        axis = self._resolved_axis(input_shape)
        channels = check.channels_of("Maxout", input_shape, axis)
        if channels % self.num_units:
            raise ValueError(
                f"Maxout: the size of axis {self.axis} ({channels}) must be "
                f"divisible by `num_units` ({self.num_units}); received input "
                f"shape {tuple(input_shape)}"
            )
        self._axis = axis
        self._group_size = channels // self.num_units
        self.input_spec = keras.layers.InputSpec(ndim=len(input_shape), axes={axis: channels})
        self.built = True

    def call(self, inputs: Any) -> Any:
        # `ops.shape` gives dynamic sizes for unknown (e.g. batch) dimensions,
        # so the reshape works for any batch size on every backend.
        shape = list(ops.shape(inputs))
        axis = self._axis
        grouped_shape = shape[:axis] + [self._group_size, self.num_units] + shape[axis + 1 :]
        return ops.max(ops.reshape(inputs, grouped_shape), axis=axis)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        axis = self._resolved_axis(input_shape)
        output_shape = list(input_shape)
        output_shape[axis] = self.num_units
        return tuple(output_shape)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"num_units": self.num_units, "axis": self.axis})
        return config
