"""The residual projection shortcut (He et al. 2016, option B): a 1x1 convolution whose
filters and stride match the body's output. The expander adds it for `shortcut: projection`;
it is not a kind a spec names, so it is not registered. Its figures read two shapes: the
shortcut's input, then the body's output it must match (the node's `shape_refs`)."""

from typing import ClassVar

from pydantic import Field

from kbuilder.spec.figures import FieldStep, Params, TensorShape, bias, channels, positions, projection_stride
from kbuilder.spec.kind import LayerSpec


class ProjectionSpec(LayerSpec):
    """1x1 convolution whose filters and stride match another tensor (residual shortcut)."""

    kind: ClassVar[str] = "projection"
    use_bias: bool = Field(True, description="Whether the 1x1 convolution adds a bias.")

    def out_channels(self, inputs: list[int | None]) -> int | None:
        return None  # the body's, which the merge after it already knows

    @staticmethod
    def strides(source: TensorShape, target: TensorShape, unknown: int | None = 1) -> tuple[int, ...] | None:
        """The stride per spatial axis taking `source` onto `target`; None when none fits.
        An axis of unknown size gets `unknown` (None: no stride fits it, as when building)."""
        strides = []
        for have, want in zip(source[1:-1], target[1:-1]):
            stride = projection_stride(have, want) if have and want else unknown
            if stride is None:
                return None
            strides.append(stride)
        return tuple(strides)

    def output_shape(self, inputs: list[TensorShape]) -> TensorShape:
        return inputs[1]

    def params(self, inputs: list[TensorShape]) -> Params:
        filters = channels(inputs[1])
        return Params(channels(inputs[0]) * filters + bias(self, filters))

    def macs(self, inputs: list[TensorShape], output: TensorShape) -> int:
        return positions(output) * channels(output) * channels(inputs[0])

    def field_step(self, inputs: list[TensorShape]) -> FieldStep:
        strides = self.strides(inputs[0], inputs[1]) or ()
        return FieldStep("window", (1,) * len(strides), strides)
