"""keras.applications models by name, built offline (`weights=None`: nothing is downloaded)."""

from __future__ import annotations

import json
from typing import Any

import keras

from kbuilder.errors import UsageError, did_you_mean


def application_names() -> list[str]:
    """The model constructors keras.applications offers (ResNet50, MobileNetV2, ...)."""
    return sorted(
        n for n in dir(keras.applications) if n[:1].isupper() and callable(getattr(keras.applications, n))
    )


def build_application(name: str, input_shape: tuple[int, ...] | None = None) -> Any:
    """The model with random weights; `input_shape` where the model allows one (smaller is faster)."""
    if name not in application_names():
        raise UsageError(
            f"'{name}' is neither a .keras file nor a keras.applications model{did_you_mean(name, application_names())}"
            f" (known: {', '.join(application_names())})"
        )
    kwargs: dict[str, Any] = {"weights": None}
    if input_shape is not None:
        kwargs["input_shape"] = tuple(input_shape)
    try:
        return getattr(keras.applications, name)(**kwargs)
    except ValueError as exc:
        raise UsageError(f"keras.applications.{name} refuses input_shape {input_shape}: {exc}") from None


def application_config(model: Any) -> Any:
    """The model's config as a `.keras` file holds it (serialized, as plain JSON data)."""
    # Through JSON, so tuples become lists exactly as in a saved file.
    return json.loads(json.dumps(keras.saving.serialize_keras_object(model)))
