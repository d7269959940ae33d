"""Graph -> keras.Model: `build(loaded)` expands a loaded spec and builds it (kbuilder.build.model).

The package's other modules need no Keras (the budget, the builder table, the static build
that `kbuilder build` tabulates), and the CLI reads `kbuilder.build.budget` before it
validates a spec; so this package does not import
kbuilder.build.model, which imports Keras, until one of its names is asked for (PEP 562).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kbuilder.build.model import BuiltModel, build, build_graph, build_model, partial_model

__all__ = ["BuiltModel", "build", "build_graph", "build_model", "partial_model"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(import_module("kbuilder.build.model"), name)
    raise AttributeError(f"module 'kbuilder.build' has no attribute {name!r}")
