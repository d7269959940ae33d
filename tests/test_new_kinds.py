"""conv1d/conv2d_transpose and cropping1d/2d: shapes, parameters, MACs and receptive fields
by their definitions; shape errors in the spec's words; projection strides by ceiling."""

from __future__ import annotations

import pytest

from kbuilder import api
from kbuilder.errors import BuildError, SpecError
from kbuilder.spec import loads_spec


def spec(layers: str, shape: str = "[12, 12, 4]") -> str:
    return f"name: m\ninputs:\n  x: {{shape: {shape}}}\nlayers:\n{layers}"


def rows(text: str) -> dict:
    return {row.name: row for row in api.report(api.build(loads_spec(text, file="t.yaml"))).rows}


SIZES = [  # (arguments, output size from 12): one model, one build
    ("kernel_size: 3, strides: 2", 2 * (12 - 1) + 3),  # valid: (in - 1) * s + k
    ("kernel_size: 4, strides: 3, output_padding: 2", 3 * 11 + 4 + 2),  # ... + output_padding
    ("kernel_size: 3, strides: 2, padding: same", 24),  # same: in * s
    (
        "kernel_size: 3, strides: 2, padding: same, output_padding: 1",
        2 * 11 + 3 - 2 * 1 + 1,
    ),  # k - 2 (k // 2) + op
]


def test_conv2d_transpose_output_sizes():
    layers = "".join(
        f"  - conv2d_transpose: {{name: t{i}, inputs: x, filters: 5, {args}}}\n"
        for i, (args, _) in enumerate(SIZES)
    )
    r = rows(spec(layers) + f"outputs: [{', '.join(f't{i}' for i in range(len(SIZES)))}]\n")
    for i, (args, size) in enumerate(SIZES):
        assert r[f"t{i}"].output_shape == [size, size, 5], args
    assert r["t1"].params == 4 * 4 * 4 * 5 + 5


def test_transposed_macs_and_receptive_field():
    r = rows(
        spec(
            "  - conv2d: {name: c, filters: 4, kernel_size: 3, strides: 2}\n"  # 5x5, field 3/2
            "  - conv2d_transpose: {name: t, filters: 6, kernel_size: 3, strides: 2}\n"
        )
    )
    assert r["t"].macs == 5 * 5 * 4 * 9 * 6  # every input value times every kernel weight
    # an output sums ceil(3/2) = 2 neighbouring inputs: 3 + (2 - 1) * 2 = 5; stride 2 / 2 = 1
    assert r["t"].receptive_field.size == (5, 5) and r["t"].receptive_field.stride == (1, 1)
    r = rows(spec("  - conv1d_transpose: {name: t, filters: 2, kernel_size: 4, strides: 4}\n", "[10, 3]"))
    assert r["t"].output_shape == [40, 2] and r["t"].macs == 10 * 3 * 4 * 2
    assert r["t"].receptive_field.size == (1,)  # kernel = stride: each output sees one input


def test_transposed_kernel_larger_than_its_input_is_fine():
    r = rows(spec("  - conv2d_transpose: {name: t, filters: 2, kernel_size: 4}\n", "[1, 1, 8]"))
    assert r["t"].output_shape == [4, 4, 2]


def test_output_padding_must_be_below_the_stride():
    with pytest.raises(SpecError, match="output_padding 2 must be less than the strides 2"):
        api.validate(
            loads_spec(
                spec("  - conv2d_transpose: {filters: 2, kernel_size: 3, strides: 2, output_padding: 2}\n")
            )
        )


def test_cropping_forms():
    r = rows(
        spec(
            "  - cropping2d: {name: a, inputs: x, cropping: 2}\n"
            "  - cropping2d: {name: b, inputs: x, cropping: [1, 3]}\n"
            "  - cropping2d: {name: c, inputs: x, cropping: [[0, 1], [2, 3]]}\n"
            "  - input: {name: s, shape: [20, 6]}\n"
            "  - cropping1d: {name: d, inputs: s, cropping: [1, 4]}\n"
            "  - cropping1d: {name: e, inputs: s, cropping: 3}\n"
            "outputs: [a, b, c, d, e]\n"
        )
    )
    assert [r[n].output_shape for n in "abcde"] == [[8, 8, 4], [10, 6, 4], [11, 7, 4], [15, 6], [14, 6]]


def test_cropping_everything_away_is_a_located_error():
    with pytest.raises(BuildError) as info:
        api.build(
            loads_spec(
                spec("  - cropping2d: {name: cut, cropping: [[3, 3], [0, 0]]}\n", "[6, 6, 1]"), file="t.yaml"
            )
        )
    assert (
        str(info.value)
        == "t.yaml:5:5: layers[0]: layer 'cut' (cropping2d) cuts 6x0 off its input 6x6, leaving nothing"
    )


def test_negative_cropping_is_refused():
    with pytest.raises(SpecError, match="greater than or equal to 0"):
        api.validate(loads_spec(spec("  - cropping2d: -1\n")))


PROJECTION = """name: xception_entry
inputs:
  x: {{shape: [{size}, {size}, 4]}}
layers:
  - residual:
      name: r
      shortcut: projection
      layers:
        - separable_conv2d: {{filters: 8, kernel_size: 3, padding: same}}
        - max_pooling2d: {{pool_size: 3, strides: {stride}, padding: same}}
"""


def test_projection_infers_a_ceiling_stride():
    """Xception's 147 -> 74 under `padding: same` (15 -> 8 here) is stride 2."""
    built = api.build(loads_spec(PROJECTION.format(size=15, stride=2)))
    assert built.model.get_layer("r-projection").strides == (2, 2)
    assert tuple(built.model.output.shape) == (None, 8, 8, 8)


def test_projection_without_a_fitting_stride_says_why():
    # 15 -> 8 -> cropped to 6: ceil(15 / 2) = 8 and ceil(15 / 3) = 5, no stride gives 6
    text = PROJECTION.format(size=15, stride=2) + "        - cropping2d: [[0, 2], [0, 2]]\n"
    with pytest.raises(BuildError, match=r"no stride s gives ceil\(input / s\) = output"):
        api.build(loads_spec(text))
