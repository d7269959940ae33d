"""The closed registry of layer kinds: a spec can only name kinds registered here.

Each kind registers its Pydantic spec model once with `@layer_kind(...)` (kbuilder.spec.kind),
beside its static figures. Importing this module imports every family, so `LAYER_KINDS` is
complete; the families import only kbuilder.spec.kind, never this module (no cycle). The
builder side (`kbuilder.build`) registers one builder per kind; the registry-parametrized
tests walk this registry so every new kind is tested the moment it is registered.
"""

from kbuilder.spec import composite, layers
from kbuilder.spec.kind import LAYER_KINDS, LayerSpec, WeightedLayerSpec, layer_kind

FAMILIES = (composite, layers)  # imported for their registrations


def all_kinds() -> dict[str, type[LayerSpec]]:
    """Every registered kind, by name."""
    return LAYER_KINDS


__all__ = ["LAYER_KINDS", "LayerSpec", "WeightedLayerSpec", "all_kinds", "layer_kind"]
