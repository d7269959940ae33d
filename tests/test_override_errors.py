"""Mistakes in `--set` and in the file: one precise message each, located where the user
wrote the mistake (the `--set` argument, or the file's line of the wrong value)."""

from __future__ import annotations

import pytest

from kbuilder.errors import SpecError
from kbuilder.graph import expand
from kbuilder.spec import load_spec, loads_spec
from tests.conftest import SPECS

CONV = """
name: conv
inputs:
  image: {shape: [28, 28, 1]}
layers:
  - conv2d: {name: c1, filters: 4, kernel_size: [3, 3, 3]}
"""


def _problems(spec_file, overrides=()) -> list[str]:
    with pytest.raises(SpecError) as info:
        load_spec(spec_file, overrides=list(overrides))
    return info.value.details()


def test_a_misspelt_parameter_is_refused_with_a_suggestion():
    (problem,) = _problems(SPECS / "resnet50.yaml", ["params.bn_epsilom=1e-3"])
    assert problem.startswith("--set params.bn_epsilom=1e-3: ")
    assert "no parameter 'bn_epsilom'" in problem and "did you mean 'bn_epsilon'?" in problem
    load_spec(SPECS / "resnet50.yaml", overrides=["params.bn_epsilon=1e-3"])  # the declared one is fine


def test_a_parameter_of_a_spec_without_params_is_refused():
    (problem,) = _problems(SPECS / "lenet5.yaml", ["params.width=8"])
    assert problem.startswith("--set params.width=8: ") and "declares no parameters" in problem


def test_a_wrong_tag_given_with_set_is_reported_at_the_set_argument():
    (problem,) = _problems(SPECS / "mnist_mlp.yaml", ["train.data.preprocess.0.type=rescal"])
    assert problem.startswith("--set train.data.preprocess.0.type=rescal: train.data.preprocess[0].type: ")
    assert "did you mean 'rescale'?" in problem


def test_a_wrong_optimizer_type_is_one_message():
    (problem,) = _problems(SPECS / "mnist_mlp.yaml", ["train.optimizer.type=adamm"])
    assert problem.startswith("--set train.optimizer.type=adamm: train.optimizer.type: ")
    assert "did you mean 'adam'?" in problem


def test_a_wrong_tag_in_the_file_is_located_at_its_line(tmp_path):
    text = (SPECS / "mnist_mlp.yaml").read_text()
    line = next(n for n, row in enumerate(text.splitlines(), 1) if "type: sgd" in row)
    spec = tmp_path / "adamm.yaml"
    spec.write_text(text.replace("type: sgd", "type: adamm"))
    (problem,) = _problems(spec)
    assert problem.startswith(f"{spec}:{line}:") and "train.optimizer.type: " in problem


def test_a_three_element_kernel_is_one_message():
    with pytest.raises(SpecError) as info:
        expand(loads_spec(CONV, file="conv.yaml"))
    (problem,) = info.value.details()
    assert problem == "conv.yaml:6:36: layers[0].conv2d.kernel_size: expected at most 2 items; got [3, 3, 3]"


def test_a_value_of_no_member_type_still_names_every_choice():
    """`kernel_size: "3"`: neither an integer nor a list, so both forms are named (merged)."""
    with pytest.raises(SpecError) as info:
        expand(loads_spec(CONV.replace("[3, 3, 3]", "three"), file="conv.yaml"))
    (problem,) = info.value.details()
    assert "integer" in problem and "list" in problem


def test_training_a_spec_without_a_train_section_says_so_whatever_the_options():
    """`kbuilder train lenet5 --epochs 1`: --epochs is the override train.epochs=1, which
    must not turn the missing section into "train.data: missing required field"."""
    import kbuilder.api as kb
    from kbuilder.errors import UsageError

    for overrides in ([], ["train.epochs=1"], ["train.backend=tensorflow"]):
        with pytest.raises(UsageError, match="the spec 'lenet5' has no train section"):
            kb.train("lenet5", overrides)
