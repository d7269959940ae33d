"""Layer kinds Keras lacks; their Keras layers live in `kbuilder/layers/`.

`keras_class` names starting with `kbuilder:` are resolved in `kbuilder.layers`. Their
static figures are here, like every kind's: the Keras layers do not count themselves.
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
from kbuilder.spec.figures import (
    FieldStep,
    Params,
    TensorShape,
    bias,
    channels,
    positions,
    window_product,
    window_step,
    windowed_shape,
)
from kbuilder.spec.kind import LayerSpec, layer_kind

# LeCun et al. 1998, Table I: C3's 16 maps read 6 x 3 + 9 x 4 + 1 x 6 = 60 of S2's maps.
LENET5_C3_CONNECTIONS = 60


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
    keeps_shape = True


@layer_kind("maxout", shorthand="num_units", keras_class="kbuilder:Maxout", category="activation")
class Maxout(LayerSpec):
    """Maxout (Goodfellow et al. 2013): max over groups of C/num_units features."""

    num_units: Width = Field(description="Output features; the input axis must divide by it.")
    axis: Axis = Field(-1, description="The feature axis.")

    def output_shape(self, inputs: list[TensorShape]) -> TensorShape:
        shape = list(inputs[0])
        shape[self.axis] = self.num_units
        return tuple(shape)


@layer_kind("scaled_tanh", keras_class="kbuilder:ScaledTanh", category="activation")
class ScaledTanh(LayerSpec):
    """LeCun's squashing function A * tanh(S * x), A = 1.7159, S = 2/3."""

    amplitude: float = Field(1.7159, gt=0, description="A, the output amplitude.")
    slope: float = Field(2.0 / 3.0, gt=0, description="S, the slope at the origin divided by A.")
    keeps_shape = True


@layer_kind("trainable_subsampling", keras_class="kbuilder:TrainableSubsampling", category="pooling")
class TrainableSubsampling(LayerSpec):
    """LeNet-5's S2/S4: 2x2 sum times a trainable coefficient plus a trainable bias per map."""

    input_rank = 4  # height, width and channels

    pool_size: Size2D = Field(2, description="Window size.")
    strides: Size2D | None = Field(None, description="Step; default: pool_size.")
    mode: Literal["sum", "average"] = Field(
        "sum", description="Sum (as in the paper) or average of the window."
    )
    activation: OptionalActivation = None

    def output_shape(self, inputs: list[TensorShape]) -> TensorShape:
        return windowed_shape(self, inputs[0], "pool_size", inputs[0][-1])

    def params(self, inputs: list[TensorShape]) -> Params:
        return Params(2 * channels(inputs[0]))  # a coefficient and a bias per map

    def macs(self, inputs: list[TensorShape], output: TensorShape) -> int:
        return positions(output) * channels(output)  # coefficient * pooled + bias per output

    def field_step(self, inputs: list[TensorShape]) -> FieldStep:
        return window_step(self, inputs[0], "pool_size")


@layer_kind(
    "layer_scale", shorthand="init_value", keras_class="kbuilder:LayerScale", category="normalization"
)
class LayerScale(LayerSpec):
    """A learned factor per channel (last axis), each starting at `init_value`: ConvNeXt's and
    CaiT's layer scale on a residual branch (ConvNeXt: 1e-6)."""

    init_value: float = Field(1e-6, description="The initial value of every channel's factor.")
    keeps_shape = True

    def params(self, inputs: list[TensorShape]) -> Params:
        return Params(channels(inputs[0]))  # gamma: one trainable factor per channel

    def macs(self, inputs: list[TensorShape], output: TensorShape) -> int:
        return positions(output) * channels(output)  # one multiply per element


@layer_kind("partial_conv2d", keras_class="kbuilder:PartialConv2D", category="conv")
class PartialConv2D(LayerSpec):
    """Convolution where each output map sees only some input maps (LeNet-5's C3)."""

    input_rank = 4  # height, width and channels

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

    def connection_count(self) -> int:
        """Input maps read, summed over the output maps: the kernels that exist."""
        if self.connections == "lenet5_c3":
            return LENET5_C3_CONNECTIONS
        return sum(len(maps) for maps in self.connections)

    def output_shape(self, inputs: list[TensorShape]) -> TensorShape:
        return windowed_shape(self, inputs[0], "kernel_size", self.filters, default_stride=1)

    def params(self, inputs: list[TensorShape]) -> Params:
        kernels = window_product(self.kernel_size, inputs[0]) * self.connection_count()
        return Params(kernels + bias(self, self.filters))

    def macs(self, inputs: list[TensorShape], output: TensorShape) -> int:
        return positions(output) * self.connection_count() * window_product(self.kernel_size, inputs[0])

    def field_step(self, inputs: list[TensorShape]) -> FieldStep:
        return window_step(self, inputs[0], "kernel_size", default_stride=1)


@layer_kind("euclidean_rbf", shorthand="units", keras_class="kbuilder:EuclideanRBF", category="core")
class EuclideanRBF(LayerSpec):
    """LeNet-5's output: y_i = sum_j (x_j - w_ij)^2 with fixed (non-trainable) +-1 prototypes."""

    units: Width = Field(description="Number of classes.")
    seed: int = Field(0, ge=0, le=MAX_SEED, description="Seed for the fixed prototypes.")
    as_logits: bool = Field(False, description="Output -y, usable as logits for softmax cross-entropy.")

    def output_shape(self, inputs: list[TensorShape]) -> TensorShape:
        return (*inputs[0][:-1], self.units)

    def params(self, inputs: list[TensorShape]) -> Params:
        return Params(0, self.units * channels(inputs[0]))  # the fixed prototypes

    def macs(self, inputs: list[TensorShape], output: TensorShape) -> int:
        return positions(inputs[0]) * self.units * channels(inputs[0])  # per (unit, feature) pair
