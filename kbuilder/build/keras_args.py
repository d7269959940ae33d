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


# Each initializer name's Keras class. Built from the classes, never through
# `keras.initializers.get(name)`: `get("constant")` fails in Keras 3 (its from_config
# needs a `value`), and constructing the class with the spec's arguments is the same
# path for a bare name and a mapping.
INITIALIZER_CLASSES: dict[str, type] = {
    "glorot_uniform": keras.initializers.GlorotUniform,
    "glorot_normal": keras.initializers.GlorotNormal,
    "he_normal": keras.initializers.HeNormal,
    "he_uniform": keras.initializers.HeUniform,
    "lecun_normal": keras.initializers.LecunNormal,
    "lecun_uniform": keras.initializers.LecunUniform,
    "zeros": keras.initializers.Zeros,
    "ones": keras.initializers.Ones,
    "constant": keras.initializers.Constant,
    "orthogonal": keras.initializers.Orthogonal,
    "identity": keras.initializers.Identity,
    "random_normal": keras.initializers.RandomNormal,
    "random_uniform": keras.initializers.RandomUniform,
    "truncated_normal": keras.initializers.TruncatedNormal,
    "variance_scaling": keras.initializers.VarianceScaling,
}


def initializer(value: str | InitializerSpec) -> Any:
    if isinstance(value, str):
        return INITIALIZER_CLASSES[value]()
    return INITIALIZER_CLASSES[value.name](**value.arguments())


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
