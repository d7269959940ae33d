"""LeNet-5's scaled hyperbolic tangent squashing function (LeCun et al. 1998)."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from kbuilder.layers import _validation as check


@keras.saving.register_keras_serializable(package="kbuilder")
class ScaledTanh(keras.layers.Layer):
    """Scaled hyperbolic tangent: `f(a) = A * tanh(S * a)`.

    Paper: Y. LeCun, L. Bottou, Y. Bengio, P. Haffner, "Gradient-Based
    Learning Applied to Document Recognition", Proc. IEEE 1998, section II-A
    and Appendix A. `A = 1.7159` and `S = 2/3` make `f(1) = 1` and
    `f(-1) = -1`, and put the maximum of the second derivative at +-1, so
    targets of +-1 sit where the function is not yet saturated.

    Args:
        amplitude: the finite amplitude `A` (default 1.7159).
        slope: the finite input scale `S` (default 2/3).
    """

    def __init__(self, amplitude: float = 1.7159, slope: float = 2.0 / 3.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.amplitude = check.finite_float("amplitude", amplitude)
        self.slope = check.finite_float("slope", slope)
        self.supports_masking = True

    def call(self, inputs: Any) -> Any:
        return self.amplitude * ops.tanh(self.slope * inputs)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"amplitude": self.amplitude, "slope": self.slope})
        return config
