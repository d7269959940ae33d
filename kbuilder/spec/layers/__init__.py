"""Spec models of the layer kinds, one module per family (importing registers them)."""

from kbuilder.spec.layers import (  # noqa: F401  (registration side effect)
    attention,
    conv,
    core,
    cropping,
    custom,
    hard_activations,
    merge,
    normalization,
    pooling,
    projection,
    scaled_add,
    transformer,
    transpose,
)
