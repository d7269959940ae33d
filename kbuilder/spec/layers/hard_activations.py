"""The piecewise-linear activations of MobileNetV3 (Howard et al. 2019, section 5.2) as
layer kinds: cheap stand-ins for sigmoid and swish on mobile hardware.

hard_sigmoid(x) = relu6(x + 3) / 6 and hard_swish(x) = x * hard_sigmoid(x), Keras's
`hard_sigmoid` and `hard_silu` activations. Both are also names for `activation:`.
"""

from typing import Any, ClassVar

from kbuilder.spec.kind import LayerSpec, layer_kind


class _FixedActivation(LayerSpec):
    keras_activation: ClassVar[str] = ""
    keeps_shape = True

    def keras_kwargs(self) -> dict[str, Any]:
        return {"activation": self.keras_activation}


@layer_kind("hard_sigmoid", keras_class="Activation", category="activation")
class HardSigmoid(_FixedActivation):
    """relu6(x + 3) / 6: MobileNetV3's gate in squeeze-and-excitation."""

    keras_activation = "hard_sigmoid"


@layer_kind("hard_swish", keras_class="Activation", category="activation")
class HardSwish(_FixedActivation):
    """x * relu6(x + 3) / 6 (Keras: hard_silu): MobileNetV3's activation in the deeper layers."""

    keras_activation = "hard_silu"
