"""Argument checks shared by the kbuilder layers.

Every check raises `ValueError` naming the argument and echoing what was
received, so a bad YAML value is reported as e.g.
"`depth_radius` must be a non-negative integer, received: -1".
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any

import keras


def _is_int(value: Any) -> bool:
    # `bool` is an `Integral` subclass; `True` is never a sensible size.
    return isinstance(value, Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def non_negative_int(name: str, value: Any) -> int:
    if not _is_int(value) or value < 0:
        raise ValueError(f"`{name}` must be a non-negative integer, received: {value!r}")
    return int(value)


def positive_int(name: str, value: Any) -> int:
    if not _is_int(value) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer, received: {value!r}")
    return int(value)


def integer(name: str, value: Any) -> int:
    if not _is_int(value):
        raise ValueError(f"`{name}` must be an integer, received: {value!r}")
    return int(value)


def finite_float(
    name: str, value: Any, *, minimum: float | None = None, strictly_above: float | None = None
) -> float:
    """A finite real number, optionally `>= minimum` or `> strictly_above`."""
    if not _is_real(value) or not math.isfinite(float(value)):
        raise ValueError(f"`{name}` must be a finite number, received: {value!r}")
    number = float(value)
    if minimum is not None and number < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}, received: {value!r}")
    if strictly_above is not None and number <= strictly_above:
        raise ValueError(f"`{name}` must be > {strictly_above}, received: {value!r}")
    return number


def positive_int_tuple(name: str, value: Any, length: int) -> tuple[int, ...]:
    """An int (repeated `length` times) or a sequence of `length` positive ints."""
    if _is_int(value):
        items: Any = (value,) * length
    elif isinstance(value, (list, tuple)):
        items = tuple(value)
    else:
        items = None
    if items is None or len(items) != length or not all(_is_int(v) and v >= 1 for v in items):
        raise ValueError(
            f"`{name}` must be a positive integer or a list of {length} positive "
            f"integers, received: {value!r}"
        )
    return tuple(int(v) for v in items)


def choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value.lower() not in choices:
        allowed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"`{name}` must be one of {allowed}, received: {value!r}")
    return value.lower()


def activation(value: Any) -> Any:
    """A Keras activation function from its name (None: linear)."""
    try:
        return keras.activations.get(value)
    except ValueError as error:
        raise ValueError(
            f"`activation` must be a Keras activation name or None, received: {value!r}"
        ) from error


def initializer(value: Any, default: str) -> Any:
    """A Keras initializer; None means the layer's default (as in keras.layers)."""
    return keras.initializers.get(default if value is None else value)


def channels_of(layer_name: str, input_shape: Any, axis: int = -1) -> int:
    """The static size of `axis`; the layers need it to create weights/tables."""
    size = input_shape[axis]
    if size is None:
        raise ValueError(
            f"{layer_name} needs a known size on axis {axis}; received input shape {tuple(input_shape)}"
        )
    return int(size)
