"""Per-layer figures of a built model, each asked of the layer's spec kind: MACs and
receptive fields (kbuilder/spec/layers/ holds every kind's rules, kbuilder/graph/figures.py
applies them to a node).

MACs are multiply-accumulates for ONE sample: a dense layer costs in*out per position,
a convolution costs out_positions * filters * kernel_area * in_channels / groups (bias
adds are not counted), depthwise and separable convolutions count their two parts, a
transposed convolution costs in_positions * in_channels * kernel_area * filters.
Normalization, activation, pooling, merge and reshaping layers count 0, as in the papers'
tables.
"""

from __future__ import annotations

from typing import Any

from kbuilder.graph.receptive import ReceptiveField
from kbuilder.spec.figures import TensorShape
from kbuilder.spec.kind import LayerSpec
from kbuilder.spec.registry import all_kinds

__all__ = ["ReceptiveField", "macs", "spec_of_layer"]


def _kinds_by_class() -> dict[str, type[LayerSpec]]:
    """Spec classes by the Keras class they build (`kbuilder:PartialConv2D` -> PartialConv2D);
    the first registered wins (`activation`, `hard_sigmoid`... all build Activation: no MACs)."""
    by_class: dict[str, type[LayerSpec]] = {}
    for spec in all_kinds().values():
        if spec.keras_class:
            by_class.setdefault(spec.keras_class.removeprefix("kbuilder:"), spec)
    return by_class


def spec_of_layer(layer: Any) -> LayerSpec | None:
    """The spec of the kind that builds a Keras layer like `layer`, read from its config;
    None for a class no kind builds. A projection shortcut (a 1x1 Conv2D) reads as conv2d."""
    spec = _kinds_by_class().get(type(layer).__name__)
    if spec is None:
        return None
    config = layer.get_config()
    fields = {name: config[name] for name in spec.model_fields if name in config}
    return spec.model_construct(**fields)  # Keras already checked these values


def macs(layer: Any, in_shape: TensorShape, out_shape: TensorShape) -> int:
    """Multiply-accumulates of a built Keras `layer` for one sample (shapes include the batch
    axis), by the rule of the kind that builds it; 0 for a layer no kind builds."""
    spec = spec_of_layer(layer)
    if spec is None:
        return 0
    return int(spec.macs([tuple(in_shape)], tuple(out_shape)))
