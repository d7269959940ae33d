"""The builder table: `@builds("kind")` registers a function `(node, inputs, tensors) ->
keras layer output` for a kind. No if-chains over kinds anywhere. The builders register in
kbuilder.build.builders, which also answers `builder_for(kind)`; this module imports
nothing of theirs (no cycle)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Builder = Callable[[Any, list[Any], dict[str, Any]], Any]
BUILDERS: dict[str, Builder] = {}
KERAS_CLASS = "<keras_class>"  # the generic builder of every kind that names its Keras class


def builds(*kinds: str) -> Callable[[Builder], Builder]:
    def register(fn: Builder) -> Builder:
        for kind in kinds:
            if kind in BUILDERS:
                raise ValueError(f"a builder for {kind!r} is registered twice")
            BUILDERS[kind] = fn
        return fn

    return register
