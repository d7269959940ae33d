"""`validate` computes every layer's output shape without Keras and refuses the shape
mistakes `build` would refuse; its shapes agree with Keras's wherever it knows them
(tools/check_static_shapes.py runs the comparison over every bundled spec)."""

from __future__ import annotations

import pytest

from kbuilder import api
from kbuilder.errors import BuildError
from kbuilder.graph.shapes import static_shapes
from kbuilder.spec import loads_spec
from kbuilder.spec.kind import LayerSpec
from kbuilder.spec.registry import all_kinds
from tests.conftest import SPECS
from tests.layer_examples import EXAMPLES, VARIANTS
from tests.test_registry import spec_text

CASES = [(k, k, e) for k, e in EXAMPLES.items() if k != "input" and k in all_kinds()] + [
    (n, k, e) for n, (k, e) in VARIANTS.items()
]


@pytest.mark.parametrize("case,kind,example", CASES, ids=[c[0] for c in CASES])
def test_static_shape_of_each_example_matches_keras(case, kind, example):
    import keras

    graph = api.validate(loads_spec(spec_text(kind, example)))
    shape = static_shapes(graph)[graph.outputs[0]]
    inputs = [keras.Input(tuple(s), dtype=example.dtype) for s in example.shapes]
    expected = tuple(example.keras(inputs).shape)
    if shape is None:  # allowed only for kinds without a rule (checked by Keras at build)
        spec = all_kinds()[kind]
        no_rule = spec.output_shape is LayerSpec.output_shape and not spec.keeps_shape
        assert no_rule and not spec.composite, f"{case}: no static shape"
    else:
        assert tuple(shape) == expected


def test_static_shapes_of_bundled_specs_match_keras():
    for name in ("lenet5", "text_cnn"):
        built = api.build(SPECS / f"{name}.yaml")
        shapes = static_shapes(api.validate(SPECS / f"{name}.yaml"))
        for layer in built.model.layers:
            assert shapes[layer.name] == tuple(layer.output.shape), (name, layer.name)


def invalid(layers: str, shape: str = "[8, 8, 1]") -> str:
    return f"name: m\ninputs:\n  x: {{shape: {shape}}}\nlayers:\n{layers}"


@pytest.mark.parametrize(
    "layers,start,end",
    [
        (
            "  - conv2d: {filters: 4, kernel_size: 3}\n  - max_pooling2d: 2\n  - conv2d: {name: C5, filters: 4, kernel_size: 5}\n",
            "m.yaml:7:5: layers[2]: layer 'C5' (conv2d 5x5, valid) needs at least 5x5 input, gets 3x3",
            "",
        ),
        (
            "  - conv2d: {name: a, filters: 4, kernel_size: 3}\n  - add: {inputs: [a, x]}\n",  # merge_problem's own wording
            "m.yaml:6:5: layers[1]: layer 'add_1' (add) needs input shapes that",
            "; gets (6x6x4) and (8x8x1)",
        ),
        (
            "  - cropping2d: {name: cut, cropping: 4}\n",
            "m.yaml:5:5: layers[0]: layer 'cut' (cropping2d) cuts 8x8 off its input 8x8, leaving nothing",
            "",
        ),
        (
            "  - residual:\n      shortcut: projection\n      layers: [{conv2d: {filters: 2, kernel_size: 3}}]\n",
            (
                "m.yaml:6:7: layers[0].residual.shortcut: layer 'residual_0-projection' (projection) cannot project "
                "input (8, 8, 1) onto the body's output (6, 6, 2): no stride s gives ceil(input / s) = output on "
                "every spatial axis"
            ),
            "",
        ),
    ],
    ids=["window", "merge", "cropping", "projection"],
)
def test_validate_refuses_shape_mistakes(layers, start, end):
    with pytest.raises(BuildError) as info:
        api.validate(loads_spec(invalid(layers), file="m.yaml"))
    message = str(info.value)
    assert message.startswith(start) and message.endswith(end) and "\n" not in message, message


def test_every_shape_problem_is_reported_in_one_run():
    text = invalid(
        "  - conv2d: {name: a, filters: 2, kernel_size: 9}\n"
        "  - conv2d: {name: b, inputs: x, filters: 2, kernel_size: 10}\n"
        "  - add: {inputs: [a, b]}\n"
    )
    with pytest.raises(BuildError) as info:
        api.validate(loads_spec(text))
    assert [p.message.split(" (")[0] for p in info.value.problems] == ["layer 'a'", "layer 'b'"]


def test_in_channels_is_bound_statically():
    text = invalid(
        '  - conv2d: {filters: 6, kernel_size: 1}\n  - dense: {name: d, units: "${in_channels * 2}"}\n'
    )
    assert static_shapes(api.validate(loads_spec(text)))["d"] == (None, 8, 8, 12)


def test_validate_without_shapes_still_expands():
    text = invalid("  - conv2d: {filters: 4, kernel_size: 30}\n")
    assert len(api.validate(loads_spec(text), shapes=False).nodes) == 2
