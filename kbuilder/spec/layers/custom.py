"""Layer kinds Keras lacks; their Keras layers live in `kbuilder/layers/`.

`keras_class` names starting with `kbuilder:` are resolved in `kbuilder.layers`.
"""

from typing import Annotated, Literal

from pydantic import Field

from kbuilder.spec.fields import (
    MAX_SEED,
    MAX_WIDTH,
    MAX_WINDOW,
    Axis,
    Initializer,
    KernelSize2D,
    OptionalActivation,
    Padding,
    Size2D,
    UseBias,
    Width,
)
from kbuilder.spec.registry import LayerSpec, layer_kind


@layer_kind("lrn", keras_class="kbuilder:LocalResponseNormalization", category="normalization")
class LRN(LayerSpec):
    """Local response normalization with tf.nn.local_response_normalization's semantics:
    x / (bias + alpha * sum over +-depth_radius channels of x^2) ** beta.
    AlexNet (k=2, n=5, alpha=1e-4, beta=0.75) is `{depth_radius: 2, bias: 2, alpha: 1e-4, beta: 0.75}`."""

    depth_radius: int = Field(
        5, ge=0, le=MAX_WINDOW, description="Half-width of the channel window (window = 2r+1)."
    )
    bias: float = Field(1.0, gt=0, description="k, added before the power (must be positive).")
    alpha: float = Field(1.0, ge=0, description="Scale of the squared sum (not divided by the window size).")
    beta: float = Field(0.5, ge=0, description="Exponent.")


@layer_kind("maxout", shorthand="num_units", keras_class="kbuilder:Maxout", category="activation")
class Maxout(LayerSpec):
    """Maxout (Goodfellow et al. 2013): max over groups of C/num_units features."""

    num_units: Width = Field(description="Output features; the input axis must divide by it.")
    axis: Axis = Field(-1, description="The feature axis.")


@layer_kind("scaled_tanh", keras_class="kbuilder:ScaledTanh", category="activation")
class ScaledTanh(LayerSpec):
    """LeCun's squashing function A * tanh(S * x), A = 1.7159, S = 2/3."""

    amplitude: float = Field(1.7159, gt=0, description="A, the output amplitude.")
    slope: float = Field(2.0 / 3.0, gt=0, description="S, the slope at the origin divided by A.")


@layer_kind("trainable_subsampling", keras_class="kbuilder:TrainableSubsampling", category="pooling")
class TrainableSubsampling(LayerSpec):
    """LeNet-5's S2/S4: 2x2 sum times a trainable coefficient plus a trainable bias per map."""

    pool_size: Size2D = Field(2, description="Window size.")
    strides: Size2D | None = Field(None, description="Step; default: pool_size.")
    mode: Literal["sum", "average"] = Field(
        "sum", description="Sum (as in the paper) or average of the window."
    )
    activation: OptionalActivation = None


@layer_kind("partial_conv2d", keras_class="kbuilder:PartialConv2D", category="conv")
class PartialConv2D(LayerSpec):
    """Convolution where each output map sees only some input maps (LeNet-5's C3)."""

    filters: Width = Field(description="Number of output maps.")
    kernel_size: KernelSize2D
    connections: Literal["lenet5_c3"] | list[list[Annotated[int, Field(ge=0, le=MAX_WIDTH)]]] = Field(
        description="'lenet5_c3' (LeCun 1998, Table I) or, per output map, the input maps it reads."
    )
    strides: Size2D = Field(1, description="Step of the window.")
    padding: Padding = "valid"
    activation: OptionalActivation = None
    use_bias: UseBias = True
    kernel_initializer: Initializer | None = None
    bias_initializer: Initializer | None = None


@layer_kind("euclidean_rbf", shorthand="units", keras_class="kbuilder:EuclideanRBF", category="core")
class EuclideanRBF(LayerSpec):
    """LeNet-5's output: y_i = sum_j (x_j - w_ij)^2 with fixed (non-trainable) +-1 prototypes."""

    units: Width = Field(description="Number of classes.")
    seed: int = Field(0, ge=0, le=MAX_SEED, description="Seed for the fixed prototypes.")
    as_logits: bool = Field(False, description="Output -y, usable as logits for softmax cross-entropy.")
