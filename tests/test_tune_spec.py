"""The `search` section (validation, located errors, each trial's spec) and the samplers, without
training: Pydantic and Optuna's in-memory storage only."""

from __future__ import annotations

import math

import optuna
import pytest

from kbuilder.cli.app import main
from kbuilder.errors import SpecError
from kbuilder.spec import loads_spec

SPEC = """\
name: xor_tune
inputs: {x: {shape: [2]}}
params: {width: 8}
layers:
  - dense: {units: "${width}", activation: tanh}
  - dense: {name: out, units: 1, activation: sigmoid}
train:
  data:
    source: {type: inline, x: [[0, 0], [0, 1], [1, 0], [1, 1]], y: [0, 1, 1, 0]}
    validation: {type: none}
  optimizer: {type: sgd, learning_rate: 0.5}
  loss: binary_crossentropy
  epochs: 2
  batch_size: 4
search:
"""


def with_search(text: str):
    return loads_spec(SPEC + text, file="tune.yaml")


def problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as caught:
        with_search(text)
    return caught.value.details()


def test_search_section_is_validated_with_defaults():
    loaded = with_search("""\
  metric: val_loss
  space:
    train.optimizer.learning_rate: {float: [0.001, 1.0], log: true}
    params.width: {int: [2, 16], step: 2}
    layers.0.dense.activation: {choice: [tanh, relu]}
""")
    search = loaded.spec.search
    assert (search.goal(), search.sampler, search.pruner, search.trial_count()) == (
        "minimize",
        "tpe",
        "none",
        20,
    )
    assert search.epoch_metric() == "val_loss"
    assert (
        with_search(
            "  space: {params.width: {choice: [2, 4]}}\n  metric: train_accuracy\n"
        ).spec.search.epoch_metric()
        == "accuracy"
    )


def test_a_path_not_in_the_spec_is_located_and_names_the_nearest():
    found = problems(
        "  space:\n    train.optimizer.learning_rat: {float: [0.001, 1.0]}\n    layers.5.dense.units: {int: [1, 4]}\n"
    )
    assert found[0].startswith("tune.yaml:17:5: search.space.train.optimizer.learning_rat:")
    assert "did you mean 'train.optimizer.learning_rate'?" in found[0]
    assert (
        "'layers.5.dense.units' is not a path in this spec - did you mean 'layers.1.dense.units'?" in found[1]
    )


def test_paths_take_dots_or_brackets_and_defaults_of_the_resolved_spec():
    loaded = with_search(
        "  space:\n    layers[1].dense.units: {int: [1, 2]}\n    train.optimizer.momentum: {float: [0.0, 0.9]}\n"
    )
    assert set(loaded.spec.search.space) == {"layers[1].dense.units", "train.optimizer.momentum"}


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "  space: {params.width: {floats: [1, 2]}}\n",
            "expected {float: [low, high]}, {int: [low, high]} or {choice: [...]}",
        ),
        ("  space: {params.width: {int: [8, 2]}}\n", "needs low < high"),
        (
            "  space: {train.optimizer.learning_rate: {float: [0.0, 1.0], log: true}}\n",
            "a log scale needs low > 0",
        ),
        (
            "  sampler: grid\n  space: {train.optimizer.learning_rate: {float: [0.1, 1.0]}}\n",
            "the grid sampler needs discrete values",
        ),
        (
            "  sampler: grid\n  trials: 9\n  space: {params.width: {int: [2, 8], step: 2}}\n",
            "the grid has 4 points; ask for at most 4 trials",
        ),
        (
            "  metric: test_accuracy\n  pruner: median\n  space: {params.width: {int: [2, 8]}}\n",
            "pruning needs a per-epoch figure",
        ),
        ("  metric: accuracy\n  space: {params.width: {int: [2, 8]}}\n", "string should match pattern"),
        (
            "  sampler: coarse_to_fine\n  trials: 4\n  space: {params.width: {int: [2, 8]}}\n",
            "3 rounds need at least 6 trials",
        ),
        ("  sampler: tpee\n  space: {params.width: {int: [2, 8]}}\n", "did you mean 'tpe'?"),
    ],
)
def test_bad_search_sections_are_located(text, message):
    found = problems(text)
    assert any(message in line for line in found), found
    assert all(line.startswith("tune.yaml:") for line in found)


def test_each_trial_spec_has_its_values_and_no_search():
    from kbuilder.experiments.tune.trial import trial_spec

    loaded = with_search("""\
  fixed: {train.data.validation: {type: split, fraction: 0.5}}
  space:
    params.width: {int: [2, 16]}
    layers.0.dense.activation: {choice: [tanh, relu]}
""")
    trial = trial_spec(loaded, {"params.width": 6, "layers.0.dense.activation": "relu"}, "trial 0")
    assert trial.spec.search is None and "search" not in trial.data
    assert trial.spec.params["width"] == 6 and trial.data["layers"][0]["dense"]["activation"] == "relu"
    assert trial.spec.train.data.validation.type == "split"
    assert loaded.data["params"]["width"] == 8  # the tuned spec itself is unchanged


def test_a_sampled_value_the_spec_refuses_fails_with_a_located_message():
    from kbuilder.experiments.tune.trial import trial_spec

    loaded = with_search("  space: {train.batch_size: {choice: [4, 2]}}\n")  # 0 sampled by hand below
    with pytest.raises(SpecError) as caught:
        trial_spec(loaded, {"train.batch_size": 0}, "trial 3")
    assert "train.batch_size=0 (trial 3)" in str(caught.value) and "greater than or equal to 1" in str(
        caught.value
    )


def _run(search_text: str, objective, trials: int, direction: str = "maximize"):
    from kbuilder.experiments.tune.space import make_sampler, suggest

    search = with_search(search_text).spec.search
    study = optuna.create_study(sampler=make_sampler(search), direction=direction)
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def wrapped(trial):
        values = suggest(trial, search)
        inner = trial.study.sampler.inner(trial.number)
        if hasattr(inner, "trial_intervals"):
            trial.set_user_attr("intervals", inner.trial_intervals(trial.study, trial.number))
        return objective(values)

    study.optimize(wrapped, n_trials=trials)
    return study


def test_grid_covers_every_point_once():
    study = _run(
        "  sampler: grid\n  space:\n    params.width: {int: [2, 6], step: 2}\n    layers.0.dense.activation: {choice: [tanh, relu]}\n",
        lambda v: v["params.width"],
        6,
    )
    points = {(t.params["params.width"], t.params["layers.0.dense.activation"]) for t in study.trials}
    assert points == {(w, a) for w in (2, 4, 6) for a in ("tanh", "relu")}


def test_coarse_to_fine_narrows_around_the_best_trials():
    text = """\
  sampler: coarse_to_fine
  trials: 18
  rounds: 3
  space:
    train.optimizer.learning_rate: {float: [0.0001, 1.0], log: true}
    params.width: {int: [8, 128], step: 8}
    layers.0.dense.activation: {choice: [tanh, relu, sigmoid]}
"""

    def objective(v):  # best near lr 0.01, width 64, relu
        return (
            -abs(math.log10(v["train.optimizer.learning_rate"]) + 2)
            - abs(v["params.width"] - 64) / 64
            - (v["layers.0.dense.activation"] != "relu")
        )

    study = _run(text, objective, 18)
    assert all(not t.user_attrs["intervals"] for t in study.trials[:6])  # round 0: the whole space
    last = study.trials[-1].user_attrs["intervals"]
    low, high = last["train.optimizer.learning_rate"]
    assert 0.0001 <= low < high <= 1.0 and math.log10(high / low) < 4  # narrower than the 4 declared decades
    w_low, w_high = last["params.width"]
    assert 8 <= w_low <= w_high <= 128 and (w_high - w_low) < 120 and (w_low - 8) % 8 == 0
    assert set(last["layers.0.dense.activation"]) <= {"tanh", "relu", "sigmoid"}
    for trial in study.trials[12:]:
        lo, hi = trial.user_attrs["intervals"]["train.optimizer.learning_rate"]
        assert lo <= trial.params["train.optimizer.learning_rate"] <= hi


def test_two_workers_with_the_same_seed_draw_different_values():
    from kbuilder.experiments.tune.space import make_sampler

    search = with_search(
        "  sampler: random\n  space: {train.optimizer.learning_rate: {float: [0.001, 1.0]}}\n"
    ).spec.search
    storage = optuna.storages.InMemoryStorage()
    first = optuna.create_study(storage=storage, study_name="s", sampler=make_sampler(search))
    second = optuna.load_study(storage=storage, study_name="s", sampler=make_sampler(search))
    a, b = first.ask(), second.ask()
    assert a.suggest_float("lr", 0.001, 1.0) != b.suggest_float("lr", 0.001, 1.0)


def test_cli_reports_a_bad_search_with_exit_2(tmp_path, capsys):
    spec = tmp_path / "tune.yaml"
    spec.write_text(SPEC + "  space: {params.widht: {int: [2, 8]}}\n")
    assert main(["tune", str(spec)]) == 2
    err = capsys.readouterr().err
    assert (
        f"{spec}:16:11: search.space.params.widht: 'params.widht' is not a path in this spec - did you mean 'params.width'?"
        in err
    )
    assert main(["tune", str(spec), "--format", "json"]) == 2
    assert '"exit_code": 2' in capsys.readouterr().out


def test_cli_refuses_a_spec_without_search(tmp_path, capsys):
    spec = tmp_path / "plain.yaml"
    spec.write_text(SPEC.replace("search:\n", ""))
    assert main(["tune", str(spec)]) == 2
    assert "has no search section" in capsys.readouterr().err
    assert main(["tune", "--report", str(tmp_path)]) == 2
    assert "is not a study folder" in capsys.readouterr().err


def test_the_baseline_is_the_spec_own_values_when_the_space_holds_them():
    from kbuilder.spec.search_check import baseline_values

    def baseline(space: str):
        loaded = with_search(space)
        return baseline_values(
            loaded.spec.search, loaded.data, loaded.spec.model_dump(mode="json", exclude={"search"})
        )

    assert baseline(
        "  space:\n    params.width: {int: [2, 16], step: 2}\n    train.optimizer.learning_rate: {float: [0.1, 1.0], log: true}\n"
    ) == {"params.width": 8, "train.optimizer.learning_rate": 0.5}
    assert baseline("  space: {layers.0.dense.activation: {choice: [relu, tanh]}}\n") == {
        "layers.0.dense.activation": "tanh"
    }
    assert baseline("  space: {params.width: {int: [2, 16], step: 4}}\n") is None  # 8 is not on 2, 6, 10, 14
    assert baseline("  space: {train.optimizer.learning_rate: {float: [0.6, 1.0]}}\n") is None


def test_a_retry_queued_twice_runs_once():
    from kbuilder.experiments.tune.study import is_duplicate_retry

    study = optuna.create_study()
    for _ in range(2):  # two workers failed the same stale trial 0 and each queued a retry
        study.add_trial(
            optuna.trial.create_trial(
                state=optuna.trial.TrialState.WAITING, system_attrs={"failed_trial": 0, "retry_history": [0]}
            )
        )
    study.enqueue_trial({})
    assert [is_duplicate_retry(study, n) for n in (0, 1, 2)] == [False, True, False]


def test_ctrl_c_fails_the_running_trial_and_queues_its_values_again(tmp_path):
    from kbuilder.experiments.tune.space import make_sampler
    from kbuilder.experiments.tune.study import TuneConfig
    from kbuilder.experiments.tune.trial import Interrupted, TrialRunner

    loaded = with_search("  sampler: random\n  space: {params.width: {int: [2, 16]}}\n")
    runner = TrialRunner(TuneConfig(spec_file="tune.yaml", study_dir=str(tmp_path)), loaded, target=3)

    def interrupted(trial, spec, run_dir):
        raise KeyboardInterrupt

    runner._train = interrupted
    study = optuna.create_study(sampler=make_sampler(loaded.spec.search))
    with pytest.raises(Interrupted):
        study.optimize(runner, n_trials=1)
    first, queued = study.get_trials()
    assert first.state == optuna.trial.TrialState.FAIL and "error" not in first.user_attrs
    assert queued.state == optuna.trial.TrialState.WAITING and queued.user_attrs["retry_of"] == 0
    assert queued.system_attrs["fixed_params"] == first.params


@pytest.mark.parametrize(
    "space, size",
    [
        ("{layers.0.dense.units: {int: [1, 1000000000]}}", "1,000,000,000 points"),
        ("{train.optimizer.learning_rate: {float: [0.001, 0.1], step: 1e-12}}", "99,000,000,001 points"),
        ("{train.optimizer.learning_rate: {float: [0.001, 0.1], step: 1e-300}}", "about 10^18 points"),
        (
            "{layers.0.dense.units: {int: [1, 1000]}, params.width: {int: [1, 1000]}, train.batch_size: {int: [1, 1000]}}",
            "1,000,000,000 points (1,000 x 1,000 x 1,000)",
        ),
    ],
)
def test_a_grid_too_large_is_refused_from_its_size_without_listing_it(space, size):
    import time

    import kbuilder.api as kb

    started = time.perf_counter()
    with pytest.raises(SpecError) as caught:
        kb.validate(SPEC.replace("search:\n", "") + f"search:\n  sampler: grid\n  space: {space}\n")
    assert time.perf_counter() - started < 0.5
    (line,) = caught.value.details()
    assert line.startswith("<string>:17:11: search.space.") and f"the grid has {size}" in line
    assert "a grid takes at most 100,000" in line


def test_the_grid_sampler_refuses_a_grid_too_large_even_without_validate():
    from kbuilder.errors import UsageError
    from kbuilder.experiments.tune.space import make_sampler
    from kbuilder.spec.search import SearchSpec

    search = SearchSpec.model_validate(
        {"sampler": "grid", "space": {"a": {"int": [1, 10**9]}, "b": {"choice": [1, 2]}}}
    )
    with pytest.raises(UsageError, match="the grid has 2,000,000,000 points"):
        make_sampler(search).inner(0)


@pytest.mark.parametrize(
    "text, where, message",
    [
        (
            "  fixed: {layers.0.dense.units: -5}\n  space: {params.width: {int: [1, 3]}}\n",
            "<string>:16:11: search.fixed.layers.0.dense.units: -5 is not a value the spec accepts",
            "layers[0].dense.units: expected a value greater than 0; got -5",
        ),
        (
            "  space: {train.batch_size: {choice: [4, 0, 8]}}\n",
            "<string>:16:42: search.space.train.batch_size.choice[1]: 0 is not a value",
            "expected a value greater than or equal to 1",
        ),
        (
            "  space: {layers.0.dense.activation: {choice: [relu, nosuch]}}\n",
            "search.space.layers.0.dense.activation.choice[1]: 'nosuch' is not a value",
            "expected one of 'linear'",
        ),
        (
            "  space: {params.width: {choice: [4, -1]}}\n",  # reaches the layer through ${width}
            "search.space.params.width.choice[1]: -1 is not a value",
            "units",
        ),
        (
            "  space: {layers.1.dense.units: {int: [-3, 8]}}\n",
            "search.space.layers.1.dense.units.int[0]: -3 is not a value",
            "greater than 0",
        ),
    ],
)
def test_fixed_and_searched_values_are_validated_as_the_field_they_set(text, where, message):
    import kbuilder.api as kb

    with pytest.raises(SpecError) as caught:
        kb.validate(SPEC + text)
    (line,) = caught.value.details()
    assert line.startswith(where) or where in line, line
    assert message in line
