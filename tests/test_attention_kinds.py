"""Attention and the token kinds around it: self- and cross-attention wiring, the located
errors of a wrong wiring or shape (from `validate`, before Keras), the `output_shape`
argument under its Keras name, the causal mask, frozen attention, and transformer specs
built from them (pre-norm residual blocks, layer_norm's epsilon)."""

from __future__ import annotations

import numpy as np
import pytest

from kbuilder import api
from kbuilder.errors import SpecError
from kbuilder.spec import loads_spec
from kbuilder.spec.entry import validate_entry


def spec(layers: str, inputs: str = "  x: {shape: [10, 8]}\n") -> str:
    return f"name: m\ninputs:\n{inputs}layers:\n{layers}"


def refused(text: str) -> str:
    """The located message `validate` gives (no Keras build)."""
    with pytest.raises(SpecError) as info:
        api.validate(loads_spec(text, file="t.yaml"))
    return str(info.value)


TWO = "  x: {shape: [10, 8]}\n  y: {shape: [4, 6]}\n"


@pytest.mark.parametrize(
    "layers, inputs, message",
    [
        (
            "  - multi_head_attention: {inputs: [x, x, x, x], num_heads: 2, key_dim: 4}\n",
            TWO,
            (
                "t.yaml:6:28: layers[0].multi_head_attention.inputs: multi_head_attention takes one input (self-attention), "
                "[query, value] or [query, value, key]; got 4 inputs"
            ),
        ),
        (
            "  - multi_head_attention: {num_heads: 2, key_dim: 4}\n",
            "  x: {shape: [8]}\n",
            (
                "t.yaml:5:5: layers[0]: layer 'multi_head_attention_0' (multi_head_attention) needs query, "
                "value and key of one shape rank, each (positions..., features), e.g. a sequence (N, D); "
                "gets (8), (8), (8)"
            ),
        ),
        (
            "  - multi_head_attention: {inputs: [x, y, x], num_heads: 2, key_dim: 4}\n",
            TWO,
            "needs key and value at the same positions; gets (10x8) and (4x6)",
        ),
        (
            "  - multi_head_attention: {num_heads: 2, key_dim: 4, attention_axes: [2]}\n",
            "  x: {shape: [10, 8]}\n",
            "attends over axes [2], but its inputs have axes 1 to 1 between batch and features",
        ),
        (
            "  - select_token: 10\n",
            "  x: {shape: [10, 8]}\n",
            "takes position 10 of a sequence of 10; use an index from -10 to 9",
        ),
        (
            "  - class_token\n",
            "  x: {shape: [4, 4, 8]}\n",
            "(class_token) needs a sequence (positions, features) with known features; gets (4x4x8)",
        ),
        (
            "  - position_embedding\n",
            "  x: {shape: [null, 8]}\n",
            "(position_embedding) needs an input of known size to hold one vector per position; gets (?x8)",
        ),
    ],
    ids=["four-inputs", "rank-2", "key-value", "axes", "index", "image-token", "unknown-length"],
)
def test_wrong_wiring_and_shapes_are_located(layers, inputs, message):
    assert message in refused(spec(layers, inputs))


def test_the_builder_checks_the_same_before_keras():
    """An unknown length passes the static walk (the shape is unknown there); the builder
    refuses it in the spec's words, located, as the static walk would."""
    text = spec(
        "  - multi_head_attention: {inputs: [x, y, x], num_heads: 2, key_dim: 4}\n",
        "  x: {shape: [null, 8]}\n  y: {shape: [4, 6]}\n",
    )
    with pytest.raises(SpecError, match=r"t.yaml:6:5: .*needs key and value at the same positions"):
        api.build(loads_spec(text, file="t.yaml"))


def test_self_attention_feeds_one_tensor_as_query_value_and_key():
    built = api.build(loads_spec(spec("  - multi_head_attention: {name: att, num_heads: 2, key_dim: 4}\n")))
    layer = built.model.get_layer("att")
    query, value, key = layer._inbound_nodes[0].arguments.args[:3]
    assert query is value is key is built.model.inputs[0]


def test_cross_attention_takes_query_then_value_then_key():
    text = spec(
        "  - multi_head_attention: {name: att, inputs: [x, y, z], num_heads: 2, key_dim: 4, output_shape: 5}\n",
        "  x: {shape: [10, 8]}\n  y: {shape: [4, 6]}\n  z: {shape: [4, 3]}\n",
    )
    built = api.build(loads_spec(text))
    layer = built.model.get_layer("att")
    assert [tuple(t.shape) for t in layer._inbound_nodes[0].arguments.args[:3]] == [
        (None, 10, 8),
        (None, 4, 6),
        (None, 4, 3),
    ]
    assert tuple(layer._key_dense.kernel.shape) == (3, 2, 4)  # the key projection reads z
    assert tuple(built.model.outputs[0].shape) == (None, 10, 5)


def test_output_shape_keeps_its_keras_name_in_round_trips():
    entry = validate_entry({"multi_head_attention": {"num_heads": 2, "key_dim": 4, "output_shape": 6}})
    assert entry.explicit() == {"num_heads": 2, "key_dim": 4, "output_shape": 6}
    assert entry.keras_kwargs()["output_shape"] == 6 and "output_features" not in entry.keras_kwargs()
    assert entry.output_shape([(None, 10, 8)]) == (None, 10, 6)


def test_causal_mask_hides_later_positions():
    built = api.build(
        loads_spec(spec("  - multi_head_attention: {num_heads: 2, key_dim: 4, use_causal_mask: true}\n"))
    )
    x = np.random.default_rng(0).normal(size=(1, 10, 8)).astype("float32")
    changed = x.copy()
    changed[0, 5:] += 1.0
    before, after = built.model.predict(x, verbose=0), built.model.predict(changed, verbose=0)
    np.testing.assert_allclose(before[0, :5], after[0, :5], rtol=1e-5, atol=1e-6)
    assert not np.allclose(before[0, 5:], after[0, 5:])


def test_frozen_attention_counts_as_non_trainable():
    report = api.report(
        api.build(
            loads_spec(spec("  - multi_head_attention: {num_heads: 2, key_dim: 4, trainable: false}\n"))
        )
    )
    assert report.params == 4 * (8 * 8 + 8) and report.trainable_params == 0


PRE_NORM = """\
name: encoder
inputs:
  x: {shape: [6, 16]}
layers:
  - residual:
      name: attention
      layers:
        - layer_norm: {name: norm, epsilon: 1.0e-6}
        - multi_head_attention: {name: mha, num_heads: 4, key_dim: 4}
"""


def test_pre_norm_block_normalizes_the_branch_and_adds_the_raw_input():
    built = api.build(loads_spec(PRE_NORM))
    norm = built.model.get_layer("attention-norm")
    assert norm.epsilon == 1e-6
    add = built.graph.node("attention-add")
    assert built.graph.node("attention-norm").inputs == ["x"] and "x" in add.inputs


def test_a_misspelt_output_shape_is_suggested_under_its_keras_name():
    message = refused(spec("  - multi_head_attention: {num_heads: 2, key_dim: 4, output_shap: 3}\n"))
    assert "unknown field 'output_shap' - did you mean 'output_shape'?" in message
