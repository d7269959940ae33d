"""Spec values -> Keras constructor arguments (initializers, regularizers, classes)."""

from __future__ import annotations

from typing import Any

import keras

import kbuilder.layers as custom
from kbuilder.spec.fields import ConstraintSpec, InitializerSpec, RegularizerSpec


def keras_class(name: str) -> type:
    """`Conv2D` from keras.layers, or `kbuilder:Maxout` from kbuilder.layers."""
    if name.startswith("kbuilder:"):
        return getattr(custom, name.split(":", 1)[1])
    return getattr(keras.layers, name)


def initializer(value: Any) -> Any:
    if isinstance(value, str):
        return keras.initializers.get(value)
    config = value.model_dump(exclude_none=True, exclude={"name"})
    return type(keras.initializers.get(value.name))(**config)


def regularizer(value: RegularizerSpec) -> Any:
    if value.l1 is not None and value.l2 is not None:
        return keras.regularizers.L1L2(l1=value.l1, l2=value.l2)
    if value.l1 is not None:
        return keras.regularizers.L1(value.l1)
    return keras.regularizers.L2(value.l2)


def constraint(value: ConstraintSpec) -> Any:
    if value.max_norm is not None:
        return keras.constraints.MaxNorm(max_value=value.max_norm, axis=value.axis)
    if value.unit_norm:
        return keras.constraints.UnitNorm(axis=value.axis)
    return keras.constraints.NonNeg()


def convert(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Turn nested spec objects into Keras objects; plain values pass through."""
    out = {}
    for key, value in kwargs.items():
        if isinstance(value, RegularizerSpec):
            value = regularizer(value)
        elif isinstance(value, ConstraintSpec):
            value = constraint(value)
        elif key.endswith("_initializer") and isinstance(value, (str, InitializerSpec)):
            value = initializer(value)
        elif isinstance(value, list) and key not in ("target_shape", "connections", "shared_axes"):
            value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
        out[key] = value
    return out
