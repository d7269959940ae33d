"""best.yaml: the best trial's spec with `expect` computed for its model and the recipe's epochs."""

from __future__ import annotations

import copy
from pathlib import Path

import optuna
import pytest
import yaml

import kbuilder.api as kb
from kbuilder.experiments.tune.best import write_best_spec
from kbuilder.experiments.tune.study import search_signature
from kbuilder.spec import load_spec
from tests.conftest import REPO


def study_of(data: dict, params: dict, trial_epochs: int) -> tuple[optuna.Study, optuna.trial.FrozenTrial]:
    """An in-memory study as `kbuilder tune` leaves it: the recipe, its search, one finished trial."""
    loaded = kb.load(data)
    study = optuna.create_study(direction="maximize")
    study.set_user_attr("spec_data", data)
    study.set_user_attr("search", search_signature(loaded.spec.search))
    study.set_user_attr("spec_file", "specs/mnist_mlp.yaml")
    study.set_user_attr("trial_epochs", trial_epochs)
    distributions = {
        "train.optimizer.learning_rate": optuna.distributions.FloatDistribution(0.003, 0.1, log=True),
        "layers.1.dense.units": optuna.distributions.IntDistribution(64, 512, step=64),
    }
    study.add_trial(optuna.trial.create_trial(params=params, distributions=distributions, value=0.95))
    return study, study.best_trial


def mnist_mlp() -> dict:
    return copy.deepcopy(load_spec(REPO / "specs" / "mnist_mlp.yaml").data)


def test_best_spec_expects_what_the_best_trial_builds_and_keeps_the_recipe_epochs(tmp_path):
    study, best = study_of(
        mnist_mlp(), {"train.optimizer.learning_rate": 0.02, "layers.1.dense.units": 384}, trial_epochs=2
    )
    path = write_best_spec(study, best, tmp_path / "best.yaml")
    text = path.read_text()
    data = yaml.safe_load(text)
    fc1 = 784 * 384 + 384
    fc2 = 384 * 64 + 64
    assert data["layers"][1]["dense"]["units"] == 384
    assert data["expect"]["params"] == fc1 + fc2 + 650 == data["expect"]["trainable_params"]
    assert data["expect"]["output_shape"] == [10]
    assert data["expect"]["layers"]["fc1"] == {"output_shape": [384], "params": fc1}
    assert data["expect"]["layers"]["fc2"] == {"output_shape": [64], "params": fc2}
    assert data["train"]["epochs"] == 10 and "search" not in data
    assert "each trial of the search trained 2" in text and "expect: computed" in text


def test_an_expect_the_spec_alone_cannot_answer_is_dropped_with_a_comment(tmp_path):
    data = mnist_mlp()
    data["expect"]["layers"]["fc3"] = {"params": 10}  # a layer the best trial does not have
    study, best = study_of(
        data, {"train.optimizer.learning_rate": 0.02, "layers.1.dense.units": 256}, trial_epochs=10
    )
    text = write_best_spec(study, best, tmp_path / "best.yaml").read_text()
    assert "expect" not in yaml.safe_load(text) and "# expect: dropped" in text
    assert "each trial" not in text  # the search trained the recipe's epochs: nothing to say


@pytest.mark.slow
def test_kbuilder_check_passes_on_the_best_spec(tmp_path):
    study, best = study_of(
        mnist_mlp(), {"train.optimizer.learning_rate": 0.02, "layers.1.dense.units": 448}, trial_epochs=2
    )
    path = write_best_spec(study, best, tmp_path / "best.yaml")
    kb.check(path)  # raises CheckFailed on any difference (figures from the spec's rules)
    built = kb.build(path)  # and Keras agrees with the expected count
    assert built.model.count_params() == yaml.safe_load(path.read_text())["expect"]["params"]


@pytest.mark.slow
def test_a_search_with_fewer_epochs_writes_a_best_spec_that_checks(tmp_path, monkeypatch):
    from tests.test_tune import SPEC

    spec = SPEC.replace("  epochs: 2\n", "  epochs: 7\n").replace(
        "train:\n", "expect: {params: 33, output_shape: [1]}\ntrain:\n", 1
    )
    (tmp_path / "spec.yaml").write_text(spec)
    monkeypatch.chdir(tmp_path)
    result = kb.tune(tmp_path / "spec.yaml", ["search.trials=2"], epochs=1, progress=False)
    best = yaml.safe_load(Path(result.summary["best_spec"]).read_text())
    assert best["train"]["epochs"] == 7  # the recipe's, not the search's 1
    trials = [
        yaml.safe_load((Path(r["run_dir"]) / "spec.yaml").read_text()) for r in result.summary["trials"]
    ]
    assert all(t["train"]["epochs"] == 1 for t in trials)
    width = best["params"]["width"]
    assert best["expect"] == {"params": 2 * width + width + width + 1, "output_shape": [1]}
    kb.check(result.summary["best_spec"])
