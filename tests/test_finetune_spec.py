"""train.freeze and train.phases: the fields' rules and the patterns resolved against the
expanded spec's layer names, with located errors (no Keras involved)."""

from __future__ import annotations

import textwrap

import pytest
from pydantic import ValidationError

from kbuilder.errors import SpecError
from kbuilder.spec import load_spec
from kbuilder.spec.train import TrainSpec
from kbuilder.train.freeze import plan_phases

MODEL = """
name: finetune_net
inputs:
  image: {shape: [8, 8, 1]}
layers:
  - conv2d: {name: stem, filters: 4, kernel_size: 3, padding: same}
  - residual:
      name: block
      layers:
        - conv2d: {name: conv_a, filters: 4, kernel_size: 3, padding: same}
        - batch_norm: {name: bn}
  - dense: {name: fixed, units: 4, trainable: false}
  - flatten: {name: flat}
  - dense: {name: head, units: 3}
"""
DATA = {"source": {"type": "keras", "name": "mnist"}}


def _load(tmp_path, train: str):
    path = tmp_path / "spec.yaml"
    path.write_text(textwrap.dedent(MODEL) + textwrap.dedent(train))
    return load_spec(path)


def _train(**fields) -> TrainSpec:
    return TrainSpec.model_validate({"data": DATA, **fields})


def test_epochs_are_the_sum_of_the_phases():
    spec = _train(phases=[{"epochs": 2}, {"epochs": 3, "unfreeze": "all"}])
    assert spec.epochs == 5
    assert [p.name for p in spec.phases] == ["phase1", "phase2"]
    assert TrainSpec.model_validate(spec.model_dump(mode="json")).epochs == 5  # spec.json round trip


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"epochs": 4, "phases": [{"epochs": 2}, {"epochs": 3}]}, "add up to 5"),
        ({"phases": [{"name": "a", "epochs": 1}, {"name": "a", "epochs": 1}]}, "distinct"),
        ({"phases": [{"epochs": 1, "freeze": ["x"], "unfreeze": ["x"]}]}, "both freeze and unfreeze x"),
        ({"phases": [{"epochs": 1, "freeze": ["x"], "unfreeze": "all"}]}, "both freeze and unfreeze"),
        ({"freeze": ["a", "a"]}, "more than once"),
        ({"phases": [{"epochs": 1, "lr": 0.1}]}, "Extra inputs are not permitted"),
        ({"phases": [{"epochs": 0}]}, "greater than or equal to 1"),
        ({"phases": [{"epochs": 1, "learning_rate": 0}]}, "greater than 0"),
        ({"phases": []}, "at least 1 item"),
        ({"freeze": ["a.b"]}, "should match pattern"),
    ],
)
def test_bad_fields_are_refused(fields, message):
    with pytest.raises(ValidationError, match=message):
        _train(**fields)


def test_a_phase_optimizer_by_name_and_its_learning_rate(tmp_path):
    loaded = _load(
        tmp_path,
        """
        train:
          data: {source: {type: keras, name: mnist}}
          optimizer: {type: sgd, learning_rate: 0.1, momentum: 0.9}
          phases:
            - {epochs: 1, freeze: [stem]}
            - {epochs: 1, optimizer: adam, learning_rate: 0.0001}
            - {epochs: 1, learning_rate: 0.01}
        """,
    )
    first, second, third = plan_phases(loaded)
    assert (first.optimizer.type, first.optimizer.learning_rate) == ("sgd", 0.1)
    assert (second.optimizer.type, second.optimizer.learning_rate) == ("adam", 0.0001)
    assert (third.optimizer.type, third.optimizer.momentum, third.optimizer.learning_rate) == (
        "sgd",
        0.9,
        0.01,
    )
    assert [(p.start, p.end) for p in (first, second, third)] == [(0, 1), (1, 2), (2, 3)]


def test_patterns_name_layers_composites_and_globs(tmp_path):
    loaded = _load(
        tmp_path,
        """
        train:
          data: {source: {type: keras, name: mnist}}
          freeze: [block, "s*"]
          phases:
            - {name: head, epochs: 1}
            - {name: part, epochs: 1, unfreeze: ["block-conv_*"]}
            - {name: all, epochs: 1, unfreeze: all}
        """,
    )
    head, part, everything = plan_phases(loaded)
    # `fixed` is `trainable: false` in the spec: frozen in every phase, `unfreeze: all` too.
    assert head.frozen == {"stem", "block-conv_a", "block-bn", "block-add", "fixed"}
    assert part.frozen == {"stem", "block-bn", "block-add", "fixed"}
    assert everything.frozen == {"fixed"}


def test_without_phases_freeze_holds_for_the_whole_run(tmp_path):
    loaded = _load(
        tmp_path, "train:\n  data: {source: {type: keras, name: mnist}}\n  freeze: [stem]\n  epochs: 4\n"
    )
    (plan,) = plan_phases(loaded)
    assert (plan.name, plan.start, plan.end, plan.frozen) == (None, 0, 4, {"stem", "fixed"})


def test_a_pattern_naming_no_layer_is_a_located_error(tmp_path):
    loaded = _load(
        tmp_path,
        """
        train:
          data: {source: {type: keras, name: mnist}}
          freeze: [stme]
          phases:
            - {epochs: 1}
            - {epochs: 1, unfreeze: ["blok-*"]}
        """,
    )
    with pytest.raises(SpecError) as caught:
        plan_phases(loaded)
    first, second = caught.value.problems
    line = (tmp_path / "spec.yaml").read_text().splitlines().index("  freeze: [stme]") + 1
    assert (first.location.line, first.location.column, first.location.path) == (line, 12, "train.freeze[0]")
    assert "'stme' matches no layer - did you mean 'stem'?" in first.message
    assert second.location.path == "train.phases[1].unfreeze[0]"
    assert "'blok-*' matches no layer - did you mean 'block'?" in second.message
    assert str(first).startswith(f"{tmp_path / 'spec.yaml'}:{line}:12:")


def test_validate_refuses_a_pattern_naming_no_layer(tmp_path):
    import kbuilder.api as kb

    _load(tmp_path, "train:\n  data: {source: {type: keras, name: mnist}}\n  freeze: [stme]\n")
    with pytest.raises(SpecError, match="train.freeze\\[0\\]: 'stme' matches no layer - did you mean 'stem'"):
        kb.validate(tmp_path / "spec.yaml")
