"""Builders keyed by layer kind: `@builds("kind")` registers a function
`(node, inputs) -> keras layer output`. No if-chains over kinds anywhere."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Builder = Callable[[Any, list[Any]], Any]
BUILDERS: dict[str, Builder] = {}


def builds(*kinds: str) -> Callable[[Builder], Builder]:
    def register(fn: Builder) -> Builder:
        for kind in kinds:
            if kind in BUILDERS:
                raise ValueError(f"a builder for {kind!r} is registered twice")
            BUILDERS[kind] = fn
        return fn

    return register


def builder_for(kind: str) -> Builder:
    from kbuilder.build import builders  # noqa: F401  (registers the builders)

    if kind in BUILDERS:
        return BUILDERS[kind]
    from kbuilder.spec.registry import all_kinds

    spec = all_kinds().get(kind)
    if spec is not None and spec.keras_class:
        return BUILDERS["<keras_class>"]
    raise KeyError(f"no builder is registered for layer kind {kind!r}")
