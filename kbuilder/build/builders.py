"""The builders: one generic builder for kinds that map one-to-one onto a Keras class,
and specific ones for inputs, the residual projection and attention (whose Keras call
takes query, value and key apart); `builder_for` finds a kind's."""

from __future__ import annotations

from typing import Any

import keras

from kbuilder.build.keras_args import convert, keras_class
from kbuilder.build.registry import BUILDERS, KERAS_CLASS, Builder, builds
from kbuilder.spec.layers.attention import MultiHeadAttention
from kbuilder.spec.layers.projection import ProjectionSpec
from kbuilder.spec.registry import all_kinds


def builder_for(kind: str) -> Builder:
    """The builder of `kind`: its own, else the generic one when its spec names a Keras class."""
    if kind in BUILDERS:
        return BUILDERS[kind]
    spec = all_kinds().get(kind)
    if spec is not None and spec.keras_class:
        return BUILDERS[KERAS_CLASS]
    raise KeyError(f"no builder is registered for layer kind {kind!r}")


@builds(KERAS_CLASS)
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
    return keras.Input(shape=tuple(node.spec.shape), dtype=node.spec.dtype, name=node.name)


@builds("projection")
def projection(node, inputs: list[Any], tensors: dict[str, Any]) -> Any:
    """ResNet's projection shortcut: 1x1 conv giving the body's channels and stride."""
    source, target = inputs[0].shape, tensors[node.shape_refs[0]].shape
    strides = ProjectionSpec.strides(tuple(source), tuple(target), unknown=None)
    if strides is None:
        raise ValueError(
            f"cannot project input {tuple(source[1:])} onto the body's output {tuple(target[1:])}: "
            "no stride s gives ceil(input / s) = output on every spatial axis"
        )
    conv = getattr(keras.layers, f"Conv{len(strides)}D")
    layer = conv(target[-1], 1, strides=tuple(strides), use_bias=node.spec.use_bias, name=node.name)
    return _call(layer, node, inputs[0])


@builds("multi_head_attention")
def multi_head_attention(node, inputs: list[Any], tensors: dict[str, Any]) -> Any:
    """Self-attention on one input; cross-attention on [query, value] or [query, value, key]."""
    spec = node.spec
    layer = keras.layers.MultiHeadAttention(name=node.name, **convert(spec.keras_kwargs()))
    query, value, key = MultiHeadAttention.wiring(inputs)
    output = layer(query, value, key, use_causal_mask=spec.use_causal_mask)
    if node.frozen:  # after the call: the projections it freezes are created when it is built
        layer.trainable = False
    return output
