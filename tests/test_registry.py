"""Every registered layer kind: builds from a spec like the same layer written in Keras,
and round-trips spec -> YAML -> spec."""

from __future__ import annotations

import pytest
import yaml

from kbuilder.build.builders import builder_for
from kbuilder.spec import loads_spec
from kbuilder.spec.entry import validate_entry
from kbuilder.spec.registry import all_kinds
from tests.layer_examples import BLOCKS, EXAMPLES, VARIANTS

KINDS = sorted(all_kinds())
CASES = [(kind, kind, EXAMPLES.get(kind)) for kind in KINDS] + [(n, k, e) for n, (k, e) in VARIANTS.items()]


def spec_text(kind: str, example) -> str:
    if kind == "input":
        doc = {
            "name": "m",
            "inputs": {"x": {"shape": [5]}},
            "layers": [{"input": {"name": "y", **example.args}}, {"add": {"inputs": ["x", "y"]}}],
        }
        return yaml.safe_dump(doc)
    names = [f"x{i}" for i in range(len(example.shapes))]
    inputs = {n: {"shape": s, "dtype": example.dtype} for n, s in zip(names, example.shapes)}
    args = example.args
    if len(names) > 1:
        args = {**(args or {}), "inputs": names}
    doc = {"name": "m", "inputs": inputs, "blocks": BLOCKS, "layers": [{kind: args}]}
    return yaml.safe_dump(doc, sort_keys=False)


def test_every_kind_has_an_example_and_a_builder():
    missing = [k for k in KINDS if k not in EXAMPLES]
    assert not missing, f"add examples to tests/layer_examples.py for: {missing}"
    for kind in KINDS:
        if not all_kinds()[kind].composite:
            assert builder_for(kind) is not None


@pytest.mark.parametrize("case,kind,example", CASES, ids=[c[0] for c in CASES])
def test_spec_layer_matches_keras(case, kind, example):
    import keras

    from kbuilder.api import build

    built = build(loads_spec(spec_text(kind, example)))
    if kind == "input":  # the spec adds its input to the model's declared one
        x, y = keras.Input((5,)), example.keras([])
        ref = keras.Model([x, y], keras.layers.Add()([x, y]))
    else:
        ref_inputs = [keras.Input(tuple(s), dtype=example.dtype) for s in example.shapes]
        ref = keras.Model(ref_inputs, example.keras(ref_inputs))
    assert tuple(built.model.outputs[0].shape) == tuple(ref.outputs[0].shape)
    assert built.model.count_params() == ref.count_params()


@pytest.mark.parametrize(
    "kind", [k for k in KINDS if not all_kinds()[k].composite] + ["residual", "branches"]
)
def test_spec_yaml_round_trip(kind):
    example = EXAMPLES[kind]
    spec = validate_entry({kind: example.args})
    dumped = yaml.safe_dump({kind: spec.explicit()})
    again = validate_entry(yaml.safe_load(dumped))
    assert again == spec
    full = loads_spec(spec_text(kind, example)).spec
    assert loads_spec(yaml.safe_dump(full.model_dump(mode="json", exclude_none=True))).spec == full
