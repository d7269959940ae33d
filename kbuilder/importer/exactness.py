"""Is the written spec the source model? Validate, build, compare parameters and output shape,
then copy the source's weights layer by layer (by name) and compare outputs on random inputs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from kbuilder.build.model import build
from kbuilder.graph import expand
from kbuilder.spec import loads_spec

RELATIVE_TOLERANCE = 1e-6


@dataclass
class Exactness:
    params: int
    source_params: int
    output_shape: list[Any]
    source_output_shape: list[Any]
    layers_copied: int
    max_abs_diff: float | None  # None: no source weights to compare outputs with
    max_relative_diff: float | None

    @property
    def exact(self) -> bool:
        same = self.params == self.source_params and self.output_shape == self.source_output_shape
        return same and (self.max_relative_diff is None or self.max_relative_diff <= RELATIVE_TOLERANCE)


def _shapes(model: Any) -> list[Any]:
    return [list(t.shape[1:]) for t in model.outputs]


def build_spec(text: str, file: str = "<imported>") -> Any:
    """The spec built into a Keras model (validated and expanded first, as `kbuilder build` does)."""
    loaded = loads_spec(text, file=file)
    expand(loaded)
    return build(loaded).model


def copy_weights(source: Any, target: Any) -> int:
    """Each weighted layer of `target` gets the weights of the source layer of the same name."""
    by_name = {layer.name: layer for layer in _all_layers(source)}
    copied = 0
    for layer in target.layers:
        if not layer.weights:
            continue
        origin = by_name.get(layer.name)
        if origin is None:
            raise ValueError(f"the source has no layer '{layer.name}'")
        layer.set_weights(origin.get_weights())
        copied += 1
    return copied


def _all_layers(model: Any) -> list[Any]:
    """Layers with nested models' layers inlined (their names are the importer's names)."""
    out = []
    for layer in model.layers:
        out.extend(_all_layers(layer) if isinstance(layer, keras.Model) else [layer])
    return out


def compare(text: str, source: Any, samples: int = 2, seed: int = 0) -> Exactness:
    """The spec against the Keras model it was imported from (weights copied by name)."""
    target = build_spec(text)
    copied = copy_weights(source, target)
    rng = np.random.default_rng(seed)
    inputs = [rng.uniform(0, 255, size=(samples, *t.shape[1:])).astype("float32") for t in source.inputs]
    expected = source.predict(inputs if len(inputs) > 1 else inputs[0], verbose=0)
    got = target.predict(inputs if len(inputs) > 1 else inputs[0], verbose=0)
    expected = expected if isinstance(expected, list) else [expected]
    got = got if isinstance(got, list) else [got]
    diff = max(float(np.max(np.abs(e - g))) for e, g in zip(expected, got, strict=True))
    scale = max(float(np.max(np.abs(e))) for e in expected) or 1.0
    return Exactness(
        target.count_params(),
        source.count_params(),
        _shapes(target),
        _shapes(source),
        copied,
        diff,
        diff / scale,
    )


def check_built(text: str) -> tuple[int, list[Any]]:
    """Parameters and output shapes of the spec, built (for a source with no model to compare)."""
    target = build_spec(text)
    return target.count_params(), _shapes(target)
