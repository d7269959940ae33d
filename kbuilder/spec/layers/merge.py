"""Merge layer kinds: they take two or more `inputs`. The elementwise ones broadcast as
Keras and NumPy do: (H, W, C) times a (1, 1, C) gate is squeeze-and-excitation."""

from collections.abc import Iterable

from pydantic import Field

from kbuilder.spec.base import Name
from kbuilder.spec.fields import Axis
from kbuilder.spec.figures import TensorShape
from kbuilder.spec.kind import LayerSpec, layer_kind


def _largest(sizes: Iterable[int | None]) -> int | None:
    """The broadcast size of one axis: the largest known size (None when none is known)."""
    known = [size for size in sizes if size is not None]
    return max(known) if known else None


class _Merge(LayerSpec):
    inputs: list[Name] | None = Field(
        None,
        min_length=2,
        description="The layers to merge (two or more); required unless inside `branches`.",
    )

    def out_channels(self, inputs: list[int | None]) -> int | None:
        known = [c for c in inputs if c is not None]  # elementwise: the broadcast size
        return max(known) if known else None

    def output_shape(self, inputs: list[TensorShape]) -> TensorShape:
        # NumPy broadcasting: shapes aligned from the right, a missing or size-1 axis takes
        # the other inputs' size.
        rank = max(len(s) for s in inputs) - 1
        dims = [(1,) * (rank - len(s) + 1) + tuple(s[1:]) for s in inputs]
        return (None, *(_largest(d[i] for d in dims) for i in range(rank)))


@layer_kind("concat", keras_class="Concatenate", category="merge")
class Concat(_Merge):
    """Concatenates along an axis (channels by default)."""

    axis: Axis = -1

    def out_channels(self, inputs: list[int | None]) -> int | None:
        if self.axis != -1 or None in inputs:  # another axis: the rank would decide
            return None
        return sum(c for c in inputs if c is not None)

    def output_shape(self, inputs: list[TensorShape]) -> TensorShape:
        axis = self.axis % len(inputs[0])
        sizes = [s[axis] for s in inputs]
        merged = None if None in sizes else sum(d for d in sizes if d is not None)
        return tuple(merged if i == axis else inputs[0][i] for i in range(len(inputs[0])))


@layer_kind("add", keras_class="Add", category="merge")
class Add(_Merge):
    """Element-wise sum of inputs whose shapes broadcast (equal sizes, or 1)."""


@layer_kind("subtract", keras_class="Subtract", category="merge")
class Subtract(_Merge):
    """First input minus the second (shapes broadcast: equal sizes, or 1)."""


@layer_kind("multiply", keras_class="Multiply", category="merge")
class Multiply(_Merge):
    """Element-wise product of inputs whose shapes broadcast (equal sizes, or 1)."""


@layer_kind("average", keras_class="Average", category="merge")
class Average(_Merge):
    """Element-wise mean of inputs whose shapes broadcast (equal sizes, or 1)."""


@layer_kind("maximum", keras_class="Maximum", category="merge")
class Maximum(_Merge):
    """Element-wise maximum of inputs whose shapes broadcast (equal sizes, or 1)."""


MERGE_KINDS = ("concat", "add", "subtract", "multiply", "average", "maximum")
