"""The builders: one generic builder for kinds that map one-to-one onto a Keras class,
and specific ones for inputs and the residual projection."""

from __future__ import annotations

from typing import Any

from kbuilder.spec.figures import projection_stride
from kbuilder.build.keras_args import convert, keras_class
from kbuilder.build.registry import builds


@builds("<keras_class>")
def keras_layer(node, inputs: list[Any], tensors: dict[str, Any]) -> Any:
    spec = node.spec
    layer = keras_class(spec.keras_class)(name=node.name, **convert(spec.keras_kwargs()))
    return _call(layer, node, inputs if spec.category == "merge" else inputs[0])


def _call(layer, node, inputs: Any) -> Any:
    # Set after construction: not every Keras layer accepts a `trainable` argument.
    if node.frozen:
        layer.trainable = False
    return layer(inputs)


@builds("input")
def input_layer(node, inputs: list[Any], tensors: dict[str, Any]) -> Any:
    import keras

    return keras.Input(shape=tuple(node.spec.shape), dtype=node.spec.dtype, name=node.name)


@builds("projection")
def projection(node, inputs: list[Any], tensors: dict[str, Any]) -> Any:
    """ResNet's projection shortcut: 1x1 conv giving the body's channels and stride."""
    import keras

    source, target = inputs[0].shape, tensors[node.shape_refs[0]].shape
    strides = []
    for have, want in zip(source[1:-1], target[1:-1]):
        stride = projection_stride(have, want)
        if stride is None:
            raise ValueError(
                f"cannot project input {tuple(source[1:])} onto the body's output {tuple(target[1:])}: "
                "no stride s gives ceil(input / s) = output on every spatial axis"
            )
        strides.append(stride)
    conv = getattr(keras.layers, f"Conv{len(strides)}D")
    layer = conv(target[-1], 1, strides=tuple(strides), use_bias=node.spec.use_bias, name=node.name)
    return _call(layer, node, inputs[0])
