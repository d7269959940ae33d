"""Every layer kind's static figures (kbuilder/spec/layers/) against Keras and against an
independent count, parametrized over the registry so a new kind is tested the moment it
is registered:

- MACs: on inputs of rank 2, 3 and 4 (where the kind accepts them), each layer's MACs
  equal a count derived from the built Keras layer alone: every multiplying weight
  (a kernel, prototypes, coefficients) is used once per output position (per input
  position for a transposed convolution);
- parameters, with the trainable split: equal Keras's weights for every layer example,
  frozen layers and every bundled spec, where the figures come from the spec alone
  (kbuilder.graph.figures.static_figures) and match the built table cell for cell.
"""

from __future__ import annotations

import math

import keras
import pytest

from kbuilder import api
from kbuilder.errors import SpecError
from kbuilder.graph.figures import static_figures
from kbuilder.spec import loads_spec
from kbuilder.spec.figures import pair
from kbuilder.spec.layers.core import Dense
from kbuilder.spec.registry import all_kinds
from tests.conftest import SPECS
from tests.layer_examples import EXAMPLES, VARIANTS, Example
from tests.test_registry import spec_text

# Weights that multiply the input: each is used once per position of the output (of the
# input, for a transposed convolution). Biases, normalization scales, statistics and slopes
# count 0; a layer scale multiplies every element, as a trainable_subsampling coefficient does.
MULTIPLYING = ("kernel", "depthwise_kernel", "pointwise_kernel", "prototypes", "coefficient", "layer_scale")
RANKS = {2: [16], 3: [20, 6], 4: [12, 12, 6]}  # shapes without the batch axis, by rank with it
KINDS = sorted(k for k in all_kinds() if k != "input")


def keras_macs(layer) -> int:
    """Multiply-accumulates of a built Keras layer from its weights' shapes and its tensors'."""
    if isinstance(layer, keras.layers.MultiHeadAttention):
        return attention_macs(layer)
    transposed = "Transpose" in type(layer).__name__
    shape = (layer.input if transposed else layer.output).shape
    positions = math.prod(int(d) for d in shape[1:-1])
    return positions * sum(math.prod(w.shape) for w in layer.weights if w.name in MULTIPLYING)


def attention_macs(layer) -> int:
    """Keras's MultiHeadAttention, from its call's tensors and its sublayers' kernels: each
    projection's kernel once per position of the tensor it projects (query, key, value; the
    output projection per query position), then per head the scores (each query position
    against each key position along the attention axes, key_dim MACs) and the weighted sum of
    the values (value_dim MACs)."""
    args = [t for t in layer._inbound_nodes[0].arguments.args if t is not None]
    query, value = args[0], args[1]
    key = args[2] if len(args) > 2 else value

    def positions(tensor) -> int:
        return math.prod(int(d) for d in tensor.shape[1:-1])

    projected = [(layer._query_dense, query), (layer._key_dense, key), (layer._value_dense, value)]
    projected.append((layer._output_dense, query))
    macs = sum(positions(t) * math.prod(dense.kernel.shape) for dense, t in projected)
    _, heads, key_dim = layer._query_dense.kernel.shape
    value_dim = layer._value_dense.kernel.shape[-1]
    attended = math.prod(int(key.shape[a]) for a in layer.attention_axes)
    return macs + heads * positions(query) * attended * (key_dim + value_dim)


def report_of(kind: str, example: Example):
    return api.report(api.build(loads_spec(spec_text(kind, example))))


def at_rank(example: Example, rank: int) -> Example:
    """The example on an input of `rank` (its own shape where it has that rank)."""
    if example.shapes and len(example.shapes[0]) + 1 == rank:
        return example
    return Example(example.args, [RANKS[rank]] * max(len(example.shapes), 1), example.keras, example.dtype)


@pytest.mark.parametrize("kind", KINDS)
def test_macs_of_every_kind_match_an_independent_count(kind):
    example = EXAMPLES[kind]
    built_ranks = []
    for rank in RANKS:
        try:
            built = api.build(loads_spec(spec_text(kind, at_rank(example, rank))))
        except SpecError:  # the kind does not take this rank (a 2D window on a sequence...)
            continue
        built_ranks.append(rank)
        for row in api.report(built).rows:
            if row.kind != "input":
                assert row.macs == keras_macs(built.model.get_layer(row.name)), (kind, rank, row.name)
    assert len(example.shapes[0]) + 1 in built_ranks or not example.shapes, (kind, built_ranks)


ATTENTION = [(n, e) for n, (k, e) in VARIANTS.items() if k == "multi_head_attention"]


@pytest.mark.parametrize("case,example", ATTENTION, ids=[c[0] for c in ATTENTION])
def test_cross_attention_macs_match_an_independent_count(case, example):
    """Query and key/value of different lengths and widths, and an attention axis of two."""
    built = api.build(loads_spec(spec_text("multi_head_attention", example)))
    row = next(r for r in api.report(built).rows if r.kind == "multi_head_attention")
    assert row.macs == keras_macs(built.model.get_layer(row.name)) > 0


@pytest.mark.parametrize(
    "shape,macs", [((8, 8, 96), 8 * 8 * 96 * 384), ((96,), 96 * 384), ((5, 96), 5 * 96 * 384)]
)
def test_dense_costs_inputs_times_units_per_position(shape, macs):
    """A dense layer on (8, 8, 96) multiplies each of the 64 positions' 96 features by 384
    units: 2,359,296 MACs (the report once multiplied by the channels again: 226,492,416)."""
    assert Dense(units=384).macs([(None, *shape)], (None, *shape[:-1], 384)) == macs
    assert report_of("dense", Example({"units": 384}, [list(shape)], None)).macs == macs


def test_scalar_or_pair_sizes():
    assert pair(3, 2) == (3, 3) and pair([3, 5], 2) == (3, 5) and pair((2,), 1) == (2,)


CASES = [(k, k, EXAMPLES[k]) for k in KINDS] + [(n, k, e) for n, (k, e) in VARIANTS.items()]


def assert_static_matches_built(graph, report) -> None:
    """Every node's static figures (from the spec alone) equal the built table's row."""
    figures = static_figures(graph)
    for row in report.rows:
        static = figures[row.name]
        assert static.shape is not None and list(static.shape[1:]) == row.output_shape, row.name
        assert static.params is not None, row.name
        assert (static.params.total, static.params.trainable) == (row.params, row.trainable_params), row.name
        assert static.macs == row.macs, row.name
        assert static.receptive_field == row.receptive_field, row.name


@pytest.mark.parametrize("case,kind,example", CASES, ids=[c[0] for c in CASES])
def test_static_parameters_of_every_example_match_keras(case, kind, example):
    text = spec_text(kind, example)
    built = api.build(loads_spec(text))
    report = api.report(built)
    for row in report.rows:
        if row.kind != "input":
            layer = built.model.get_layer(row.name)
            trainable = sum(math.prod(w.shape) for w in layer.trainable_weights)
            assert (row.params, row.trainable_params) == (layer.count_params(), trainable)
    assert_static_matches_built(api.validate(loads_spec(text)), report)


FROZEN = [
    ("batch_norm", {"momentum": 0.9, "trainable": False}),
    ("dense", {"units": 7, "trainable": False}),
    ("residual", {**EXAMPLES["residual"].args, "trainable": False}),
    ("block", {"use": "mlp", "trainable": False}),
]


@pytest.mark.parametrize("kind,args", FROZEN, ids=[f[0] for f in FROZEN])
def test_frozen_layers_count_as_non_trainable(kind, args):
    example = Example(args, EXAMPLES[kind].shapes, EXAMPLES[kind].keras)
    text = spec_text(kind, example)
    report = api.report(api.build(loads_spec(text)))
    assert report.params > 0 and report.trainable_params == 0
    assert_static_matches_built(api.validate(loads_spec(text)), report)


def test_batch_norm_statistics_are_non_trainable():
    figures = static_figures(api.validate(loads_spec(spec_text("batch_norm", EXAMPLES["batch_norm"]))))
    params = figures["batch_norm_0"].params
    assert params is not None and (params.trainable, params.non_trainable) == (8, 8)


BUNDLED = sorted(path.stem for path in SPECS.glob("*.yaml"))


@pytest.mark.parametrize("name", BUNDLED)
def test_static_figures_of_bundled_specs_match_the_built_table(name):
    path = SPECS / f"{name}.yaml"
    built = api.build(path, weights=False)  # figures only: a fine-tuning spec names a run not trained here
    report = api.report(built)
    assert_static_matches_built(api.validate(path), report)
    for row in report.rows:
        if row.kind != "input":
            assert row.macs == keras_macs(built.model.get_layer(row.name)), row.name
