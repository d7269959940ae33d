"""Structure parity of the mobile zoo with keras.applications (weights=None, 224x224x3,
1000 classes): MobileNetV3-Small and -Large (Howard et al. 2019) and EfficientNet-B0
(Tan & Le 2019). As tests/test_zoo_parity.py does for VGG-16/ResNet-50/DenseNet-121: at
every block boundary the output shape and the cumulative parameter count (every layer
the boundary depends on) must be the same, then the totals, trainable and not.

Each spec and its reference are built once per module (a few seconds each)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import keras
import pytest

from kbuilder import api
from tests.conftest import SPECS
from tests.test_zoo_parity import params_up_to, shape_of, spec_output, weight_count

pytestmark = pytest.mark.slow


def _mobilenet_v3_boundaries(blocks: int, head: tuple[tuple[str, str], ...]) -> Callable:
    """The stem, every bneck (keras: expanded_conv[_i]_add where the block has a
    shortcut, else its project_bn), the last 1x1 conv and the head."""

    def boundaries(reference) -> list[tuple[str, str]]:
        names = {layer.name for layer in reference.layers}
        pairs = [("rescaling", "rescaling"), ("conv_bn", "conv_bn")]
        for i in range(blocks):
            prefix = "expanded_conv_" if i == 0 else f"expanded_conv_{i}_"
            pairs.append(
                (f"bneck{i + 1}", prefix + "add" if prefix + "add" in names else prefix + "project_bn")
            )
        return pairs + [("conv_1_bn", "conv_1_bn"), *head]

    return boundaries


def _efficientnet_b0_boundaries(reference) -> list[tuple[str, str]]:
    """The stem (rescaling, the 7-value normalization, conv-BN), every MBConv block
    (keras: block{s}{a,b,..}_add where it has a shortcut, else _project_bn), the top."""
    names = {layer.name for layer in reference.layers}
    pairs = [("rescaling", "rescaling"), ("normalization", "normalization"), ("stem_bn", "stem_bn")]
    for stage, repeats in enumerate((1, 2, 2, 3, 3, 4, 1), start=1):
        for j in range(repeats):
            ours = (
                f"block{stage}"
                if stage == 1
                else (f"block{stage}-block1" if j == 0 else f"block{stage}-blocks-{j - 1}-block")
            )
            theirs = f"block{stage}{chr(97 + j)}_"
            pairs.append((ours, theirs + "add" if theirs + "add" in names else theirs + "project_bn"))
        if stage > 1:
            pairs.append(
                (
                    f"block{stage}",
                    f"block{stage}{chr(96 + repeats)}_" + ("add" if repeats > 1 else "project_bn"),
                )
            )
    return pairs + [("top_bn", "top_bn"), ("avg_pool", "avg_pool"), ("predictions", "predictions")]


@dataclass(frozen=True)
class Reference:
    factory: Callable[[], keras.Model]
    boundaries: Callable[[keras.Model], list[tuple[str, str]]]
    count: int  # blocks + stem + head boundaries, so a naming slip cannot shrink the comparison


HEAD = (
    ("avg_pool", "global_average_pooling2d"),
    ("conv_2", "conv_2"),
    ("logits", "logits"),
    ("predictions", "predictions"),
)
REFERENCES = {
    "mobilenet_v3_small": Reference(
        lambda: keras.applications.MobileNetV3Small(weights=None, input_shape=(224, 224, 3), classes=1000),
        _mobilenet_v3_boundaries(11, HEAD),
        2 + 11 + 1 + 4,
    ),
    "mobilenet_v3_large": Reference(
        lambda: keras.applications.MobileNetV3Large(weights=None, input_shape=(224, 224, 3), classes=1000),
        _mobilenet_v3_boundaries(15, HEAD),
        2 + 15 + 1 + 4,
    ),
    "efficientnet_b0": Reference(
        lambda: keras.applications.EfficientNetB0(weights=None, input_shape=(224, 224, 3), classes=1000),
        _efficientnet_b0_boundaries,
        3 + 16 + 6 + 3,
    ),
}
PUBLISHED = {"mobilenet_v3_small": 2_554_968, "mobilenet_v3_large": 5_507_432, "efficientnet_b0": 5_330_571}


@pytest.fixture(scope="module", params=sorted(REFERENCES))
def pair(request):
    name = request.param
    built = api.build(SPECS / f"{name}.yaml")
    reference = REFERENCES[name].factory()
    yield name, built, reference
    del built, reference
    keras.backend.clear_session()


def _layer_by_prefix(model, name: str):
    # keras.applications names some layers with a global counter (global_average_pooling2d_1).
    if name in {layer.name for layer in model.layers}:
        return model.get_layer(name)
    return next(layer for layer in model.layers if layer.name.startswith(name))


def test_block_boundaries_match_keras_applications(pair):
    name, built, reference = pair
    boundaries = REFERENCES[name].boundaries(reference)
    assert len(boundaries) == REFERENCES[name].count
    mismatches = []
    for ours, theirs in boundaries:
        mine, other = spec_output(built, ours), _layer_by_prefix(reference, theirs).output
        got = (shape_of(mine), params_up_to(built.model, mine))
        want = (shape_of(other), params_up_to(reference, other))
        if got != want:
            mismatches.append(f"{ours} vs {theirs}: shape, cumulative params {got} != {want}")
    assert mismatches == []


def test_totals_match_keras_applications_and_the_issue(pair):
    name, built, reference = pair
    model = built.model
    assert model.count_params() == reference.count_params() == PUBLISHED[name]
    assert weight_count(model.trainable_weights) == weight_count(reference.trainable_weights)
    assert weight_count(model.non_trainable_weights) == weight_count(reference.non_trainable_weights)
    assert shape_of(model.output) == shape_of(reference.output) == (1000,)
    expect = built.loaded.spec.expect
    assert (expect.params, expect.trainable_params, expect.non_trainable_params) == (
        model.count_params(),
        weight_count(model.trainable_weights),
        weight_count(model.non_trainable_weights),
    )


def test_same_layer_kinds_in_the_same_numbers(pair):
    """Beyond the counts: as many convolutions, depthwise convolutions, batch norms and
    multiplies (SE gates) as the reference, and the same dropout rates and noise shapes
    (EfficientNet's stochastic depth grows 0.2 * b / 16 along the blocks)."""
    _, built, reference = pair

    def census(model):
        kinds = ("Conv2D", "DepthwiseConv2D", "BatchNormalization", "Multiply", "Add", "ZeroPadding2D")
        counts = {k: sum(type(layer).__name__ == k for layer in model.layers) for k in kinds}
        drops = sorted(
            (round(layer.rate, 6), str(layer.noise_shape))
            for layer in model.layers
            if type(layer).__name__ == "Dropout"
        )
        return counts, drops

    ours = census(built.model)
    assert ours == census(reference)
    assert min(ours[0]["DepthwiseConv2D"], ours[0]["Multiply"], ours[0]["Add"]) > 0


# -- the building blocks the mobile zoo needs (cheap: no big model built) ----------------


@pytest.mark.parametrize(
    "shapes,ok",
    [
        ([(None, 14, 14, 32), (None, 1, 1, 32)], True),  # squeeze-and-excitation
        ([(None, 14, 14, 32), (None, 32)], True),  # lower rank: aligned from the right
        ([(None, 14, 14, 32), (None, 14, 1, 1)], True),
        ([(None, None, None, 8), (None, 1, 1, 8)], True),  # unknown sizes broadcast
        ([(None, 14, 14, 32), (None, 7, 7, 32)], False),
        ([(None, 14, 14, 32), (None, 1, 1, 16)], False),
        ([(None, 14, 14, 32), (None, 14)], False),
    ],
)
def test_elementwise_merges_broadcast_like_keras(shapes, ok):
    from kbuilder.graph.checks import merge_problem

    for kind in ("add", "subtract", "multiply", "average", "maximum"):
        problem = merge_problem(kind, "m", shapes)
        assert (problem is None) == ok, problem
        if not ok:
            assert "broadcast" in problem and "(14x14x32)" in problem
        try:  # Keras agrees with the pre-check
            getattr(keras.layers, kind.capitalize())()([keras.Input(s[1:]) for s in shapes])
            keras_ok = True
        except ValueError:
            keras_ok = False
        assert keras_ok == ok, kind


def test_concat_still_needs_matching_shapes():
    from kbuilder.graph.checks import merge_problem

    assert merge_problem("concat", "c", [(None, 4, 4, 2), (None, 4, 4, 3)]) is None
    assert "except on the concat axis" in merge_problem("concat", "c", [(None, 4, 4, 2), (None, 1, 1, 3)])


def test_a_non_broadcastable_multiply_is_a_located_build_error():
    from kbuilder.errors import BuildError
    from kbuilder.spec import loads_spec

    text = (
        "name: m\ninputs: {x: {shape: [8, 8, 4]}}\nlayers:\n"
        "  - global_average_pooling2d: {name: g, keepdims: true}\n"
        "  - conv2d: {name: c, filters: 3, kernel_size: 1}\n"
        "  - multiply: {name: gate, inputs: [x, c]}\n"
    )
    with pytest.raises(
        BuildError, match=r"se.yaml:6:5: .*'gate' \(multiply\) needs input shapes that broadcast"
    ):
        api.build(loads_spec(text, file="se.yaml"))


def test_in_channels_in_block_args_follows_the_spec():
    """An inverted residual's expansion `t * in_channels`, through a concat and a depthwise
    multiplier; and the EfficientNet spec's SE squeeze uses the block's INPUT channels."""
    from kbuilder.graph import expand
    from kbuilder.spec import load_spec, loads_spec

    text = """\
name: m
inputs: {x: {shape: [8, 8, 3]}}
blocks:
  ir:
    params: {expanded: null}
    layers:
      - conv2d: {name: expand, filters: "${expanded}", kernel_size: 1}
layers:
  - conv2d: {filters: 16, kernel_size: 1}
  - depthwise_conv2d: {kernel_size: 3, depth_multiplier: 2}
  - block: {use: ir, name: a, args: {expanded: "${in_channels * 6}"}}
  - branches: {name: br, paths: {keep: [], new: [conv2d: {filters: 5, kernel_size: 1}]}}
  - block: {use: ir, name: b, args: {expanded: "${in_channels}"}}
"""
    graph = expand(loads_spec(text))
    assert graph.node("a-expand").spec.filters == 6 * 32
    assert graph.node("b-expand").spec.filters == 6 * 32 + 5
    b0 = expand(load_spec(SPECS / "efficientnet_b0.yaml"))
    # block2a: input 16 channels, expanded 96, squeezed to max(1, int(16 * 0.25)) = 4
    assert b0.node("block2-block1-body-se-gate-reduce").spec.filters == 4
    assert b0.node("block2-block1-body-expand_conv").spec.filters == 96


def test_mobilenet_v3_rounds_the_se_squeeze_like_make_divisible():
    """Large's 72-wide SE squeezes to 24: 72 / 4 = 18 rounds to 16, which is more than 10%
    below 18, so 8 is added (keras.applications' _depth)."""
    from kbuilder.graph import expand
    from kbuilder.spec import load_spec

    graph = expand(load_spec(SPECS / "mobilenet_v3_large.yaml"))
    squeeze = next(n for n in graph.nodes if n.name.startswith("bneck4-") and n.name.endswith("gate-squeeze"))
    assert squeeze.spec.filters == 24
    names = [n.name for n in graph.nodes]
    assert not any(n.startswith("bneck1-") and "expand" in n for n in names)  # expansion 1: no expand conv
    assert any(n.startswith("bneck1-residual-") for n in names)  # stride 1, 16 -> 16: a shortcut
    assert not any(n.startswith("bneck2-residual-") for n in names)  # stride 2: none
