"""`scaled_add`: the first input plus a fixed multiple of the second (Inception-ResNet's residual)."""

from pydantic import Field

from kbuilder.spec.base import Name
from kbuilder.spec.kind import layer_kind
from kbuilder.spec.layers.merge import _Merge


@layer_kind("scaled_add", keras_class="kbuilder:ScaledAdd", category="merge")
class ScaledAdd(_Merge):
    """`inputs[0] + scale * inputs[1]`: Inception-ResNet's scaled residual (Szegedy et al. 2017: 0.1 to 0.3)."""

    inputs: list[Name] | None = Field(
        None,
        min_length=2,
        max_length=2,
        description="The shortcut, then the residual branch that is scaled.",
    )
    scale: float = Field(
        description="Factor of the second input (a constant: MACs count weights only, so 0)."
    )
