"""Spec models of the layer kinds, one module per family (importing registers them)."""

from kbuilder.spec.layers import conv, core, custom, hard_activations, merge, normalization, pooling  # noqa: F401
from kbuilder.spec.layers import cropping, transpose  # noqa: F401
