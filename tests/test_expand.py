"""Expansion of blocks, repeat, residual, branches and inception into named nodes."""

from __future__ import annotations

import textwrap

from kbuilder.graph import expand
from kbuilder.spec import loads_spec

SPEC = textwrap.dedent("""\
    name: t
    inputs: {img: {shape: [16, 16, 3]}}
    params: {width: 8}
    blocks:
      unit:
        params: {filters: null, strides: 1, shortcut: identity}
        layers:
          - residual:
              name: r
              shortcut: "${shortcut}"
              activation: relu
              layers:
                - conv2d: {filters: "${filters}", kernel_size: 3, strides: "${strides}", padding: same}
    layers:
      - conv2d: {name: stem, filters: "${width}", kernel_size: 3, padding: same}
      - block: {use: unit, name: u1, args: {filters: "${width * 2}", strides: 2, shortcut: projection}}
      - repeat:
          name: stage
          times: 2
          index: i
          layers:
            - conv2d: {name: "c${i}", filters: "${width + i}", kernel_size: 1}
      - branches:
          name: br
          paths:
            keep: []
            pool: [max_pooling2d: {pool_size: 3, strides: 1, padding: same}]
      - inception: {name: inc, conv1x1: 2, conv3x3_reduce: 2, conv3x3: 2, conv5x5_reduce: 2, conv5x5: 2, pool_proj: 2}
      - global_average_pooling2d: {name: gap}
    """)


def graph():
    return expand(loads_spec(SPEC, file="t.yaml"))


def test_names_are_derived_from_the_spec_path():
    names = [n.name for n in graph().nodes]
    assert names[:8] == [
        "img",
        "stem",
        "u1-r-conv2d_0",
        "u1-r-projection",
        "u1-r-projection_bn",
        "u1-r-add",
        "u1-r-relu",
        "stage-0-c0",
    ]
    assert "stage-1-c1" in names and "br-concat" in names and "inc-3x3-conv2d_1" in names


def test_parameters_and_expressions_are_substituted():
    g = graph()
    assert g.node("stem").spec.filters == 8
    assert g.node("u1-r-conv2d_0").spec.filters == 16 and g.node("u1-r-conv2d_0").spec.strides == 2
    assert g.node("stage-1-c1").spec.filters == 9


def test_composite_names_alias_their_outputs():
    g = graph()
    assert g.resolve("u1") == "u1-r-relu"
    assert g.resolve("stage") == "stage-1-c1"
    assert g.node("br-concat").inputs == ["stage-1-c1", "br-pool-max_pooling2d_0"]


def test_nodes_know_their_groups_and_lines():
    g = graph()
    conv = g.node("u1-r-conv2d_0")
    assert conv.group == ("u1", "u1-r") and conv.line == 13
    assert "in block 'unit' used at t.yaml:16:13: layers[1].block.use" in conv.context
    assert g.groups["inc"][0] == "inception"


def test_order_is_topological_when_written_out_of_order():
    spec = loads_spec(
        "name: m\ninputs: {x: {shape: [4]}}\nlayers:\n"
        "  - dense: {name: b, units: 2, inputs: [a]}\n  - dense: {name: a, units: 3, inputs: [x]}\n"
        "outputs: [b]\n"
    )
    assert [n.name for n in expand(spec).nodes] == ["x", "a", "b"]


def test_in_channels_is_bound_to_each_layers_input_at_build_time():
    from kbuilder.api import build

    spec = loads_spec(
        textwrap.dedent("""\
        name: m
        inputs: {img: {shape: [8, 8, 6]}}
        blocks:
          halve:
            layers: [conv2d: {filters: "${in_channels // 2}", kernel_size: 1}]
        layers:
          - conv2d: {filters: 12, kernel_size: 1}
          - block: {use: halve, name: a}
          - block: {use: halve, name: b}
        """)
    )
    model = build(spec).model
    assert model.get_layer("a-conv2d_0").filters == 6 and model.get_layer("b-conv2d_0").filters == 3


def test_in_channels_in_composite_arguments_is_the_spec_known_count():
    import pytest

    from kbuilder.errors import SpecError

    text = 'name: m\ninputs: {x: {shape: [4, 4, 2]}}\nlayers:\n  - repeat: {times: "${in_channels}", layers: [flatten]}\n'
    assert [n.kind for n in expand(loads_spec(text)).nodes] == ["input", "flatten", "flatten"]
    # After a flatten the count depends on every axis: a located error asks for a number.
    with pytest.raises(SpecError, match="needs its input's channel count"):
        expand(loads_spec(text.replace("layers:\n", "layers:\n  - flatten\n")))


def test_trainable_false_freezes_a_layer_or_a_whole_composite():
    from kbuilder.api import build

    spec = loads_spec(
        textwrap.dedent("""\
        name: m
        inputs: {ids: {shape: [10], dtype: int32}}
        layers:
          - embedding: {name: emb, input_dim: 50, output_dim: 4, trainable: false}
          - residual:
              name: r
              trainable: false
              shortcut: projection
              projection_batch_norm: {epsilon: 1.001e-5}
              projection_use_bias: false
              layers: [conv1d: {filters: 6, kernel_size: 3, padding: same}]
          - repeat: {name: none, times: 0, layers: [dense: 3]}
          - global_max_pooling1d
          - dense: {name: out, units: 2, kernel_constraint: {max_norm: 3}}
        """)
    )
    model = build(spec).model
    assert not model.get_layer("emb").trainable and not model.get_layer("r-conv1d_0").trainable
    assert not model.get_layer("r-projection").trainable and model.get_layer("r-projection").bias is None
    assert model.get_layer("r-projection_bn").epsilon == 1.001e-5
    assert model.get_layer("out").trainable and model.get_layer("out").kernel_constraint.max_value == 3
    import math

    assert sum(math.prod(w.shape) for w in model.trainable_weights) == 6 * 2 + 2  # only `out`
