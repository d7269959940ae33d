"""Command-line inputs refused at once with one message (issue 18): a figure into a missing
folder, the same ensemble member twice, a flood of --set values, a mapping's error said once."""

from __future__ import annotations

import time

import pytest

import kbuilder.api as kb
from kbuilder.cli.app import main
from kbuilder.errors import SpecError, UsageError
from kbuilder.spec import loads_spec
from kbuilder.storage import rundir as rd

MODEL = "name: m\ninputs: {x: {shape: [2]}}\nlayers: [{dense: {units: 1}}]\n"


def test_compare_refuses_a_figure_in_a_missing_folder_and_creates_none(tmp_path):
    target = tmp_path / "nonexistent" / "x.png"
    with pytest.raises(UsageError, match="the folder '.*nonexistent' does not exist"):
        kb.compare([tmp_path / "a", tmp_path / "b"], target)  # refused before the runs are read
    assert not target.parent.exists()


@pytest.mark.slow  # imports Keras (the ensemble package trains)
def test_ensemble_refuses_the_same_run_twice(tmp_path, capsys):
    from kbuilder.experiments.ensemble.members import plan_members

    run = tmp_path / "run"
    run.mkdir()
    (run / rd.SPEC_FILE).write_text(MODEL)
    for twice in ([str(run), str(run)], [str(run), str(tmp_path / "." / "run")]):
        with pytest.raises(UsageError) as caught:
            plan_members(twice, members=1, bagging=False, overrides=(), ensemble_dir=tmp_path / "ens")
        assert "is given twice" in str(caught.value) and "the same run twice" in str(caught.value)
    spec = tmp_path / "spec.yaml"
    spec.write_text(MODEL + "train:\n  data: {source: {type: inline, x: [[0, 0]], y: [0]}}\n")
    with pytest.raises(UsageError, match="the same spec twice .*--members N"):
        plan_members(
            [str(spec), str(spec)], members=1, bagging=False, overrides=(), ensemble_dir=tmp_path / "e"
        )


def test_a_flood_of_set_values_is_refused_before_they_are_parsed(capsys):
    args = ["validate", "lenet5"] + ["--set", "train.epochs=1"] * 250_000
    started = time.perf_counter()
    code = main(args)
    assert time.perf_counter() - started < 1.0
    err = capsys.readouterr().err
    assert code == 2 and "--set: 250000 overrides; the limit is 1000" in err, err


def test_a_mapping_with_a_bad_value_gets_one_message_not_the_name_branch_too():
    for optimizer, says in (
        (
            "{type: sgd, learning_rate: 1e30}",
            "train.optimizer.learning_rate: expected a value less than or equal to 100",
        ),
        ("{type: adamm}", "did you mean 'adam'?"),
    ):
        with pytest.raises(SpecError) as caught:
            loads_spec(
                MODEL
                + f"train:\n  data: {{source: {{type: inline, x: [[0, 0]], y: [0]}}}}\n  optimizer: {optimizer}\n"
            )
        (line,) = caught.value.details()
        assert says in line, line
    with pytest.raises(SpecError) as caught:  # a bare name that is not one still says which are
        loads_spec(
            MODEL + "train:\n  data: {source: {type: inline, x: [[0, 0]], y: [0]}}\n  optimizer: adamm\n"
        )
    assert "adam" in str(caught.value)
