"""`kbuilder ensemble`: the combination math on fixed numbers, bagging's resample, and real
ensembles of tiny runs (trained members, reused runs, the exported averaging model)."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stderr, redirect_stdout

import numpy as np
import pytest

from kbuilder.experiments.ensemble import combine

pytestmark = pytest.mark.slow

# -- the math, on fixed outputs ---------------------------------------------------------------

SPARSE = "sparse_categorical_crossentropy"
BINARY = "binary_crossentropy"


def test_logits_become_probabilities_like_softmax_and_sigmoid():
    probs = combine.to_probabilities(
        np.array([[0.0, 0.0, np.log(2.0)], [1000.0, 0.0, 0.0]]), loss=SPARSE, logits=True
    )
    np.testing.assert_allclose(probs, [[0.25, 0.25, 0.5], [1.0, 0.0, 0.0]], atol=1e-12)
    np.testing.assert_allclose(
        combine.to_probabilities(np.array([[0.0], [np.log(3.0)]]), loss=BINARY, logits=True), [[0.5], [0.75]]
    )
    untouched = np.array([[0.2, 0.8]])
    np.testing.assert_array_equal(combine.to_probabilities(untouched, loss=SPARSE, logits=False), untouched)


def test_average_and_vote_disagree_where_one_member_is_confident():
    # Two members lean weakly to class 0, one is sure of class 1: the average follows the
    # confident member, the majority vote follows the two.
    members = [np.array([[0.55, 0.45, 0.0]]), np.array([[0.55, 0.45, 0.0]]), np.array([[0.0, 1.0, 0.0]])]
    averaged = combine.average(members)
    np.testing.assert_allclose(averaged, [[1.1 / 3, 1.9 / 3, 0.0]])
    assert combine.predicted_classes(averaged, loss=SPARSE).tolist() == [1]
    winners, shares = combine.vote(members, loss=SPARSE)
    assert winners.tolist() == [0]
    np.testing.assert_allclose(shares, [[2 / 3, 1 / 3, 0.0]])


def test_a_tied_vote_goes_to_the_higher_averaged_probability_whatever_the_order():
    a, b = np.array([[0.6, 0.4, 0.0]]), np.array([[0.0, 0.1, 0.9]])
    for members in ([a, b], [b, a]):
        winners, _ = combine.vote(members, loss=SPARSE)
        assert winners.tolist() == [2]  # class 0 and 2 have one vote each; class 2 averages 0.45 > 0.3


def test_binary_vote_average_accuracy_and_loss():
    members = [
        np.array([[0.9], [0.4], [0.6]]),
        np.array([[0.8], [0.45], [0.3]]),
        np.array([[0.2], [0.7], [0.2]]),
    ]
    labels = np.array([1, 0, 0])
    winners, shares = combine.vote(members, loss=BINARY)
    assert winners.tolist() == [1, 0, 0]
    np.testing.assert_allclose(combine.vote_probabilities(shares, loss=BINARY), [[2 / 3], [1 / 3], [1 / 3]])
    averaged = combine.average(members)
    assert combine.predicted_classes(averaged, loss=BINARY).tolist() == [1, 1, 0]  # 0.633, 0.517, 0.367
    assert combine.accuracy(
        combine.predicted_classes(averaged, loss=BINARY), labels, loss=BINARY
    ) == pytest.approx(2 / 3)
    p = averaged[:, 0]
    expected = -np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p))
    assert combine.crossentropy(averaged, labels, loss=BINARY) == pytest.approx(expected)


def test_crossentropy_matches_hand_figures_and_clips_like_keras():
    probs = np.array([[0.5, 0.25, 0.25], [0.0, 1.0, 0.0]])
    assert combine.crossentropy(probs, np.array([0, 1]), loss=SPARSE) == pytest.approx(
        -(np.log(0.5) + np.log(1 - 1e-7)) / 2
    )
    assert combine.crossentropy(probs, np.array([2, 0]), loss=SPARSE) == pytest.approx(
        -(np.log(0.25) + np.log(1e-7)) / 2
    )
    one_hot = np.array([[1, 0, 0], [0, 1, 0]])
    assert combine.crossentropy(probs, one_hot, loss="categorical_crossentropy") == pytest.approx(
        combine.crossentropy(probs, np.array([0, 1]), loss=SPARSE), rel=1e-6
    )
    assert combine.accuracy(np.array([0, 2]), one_hot, loss="categorical_crossentropy") == 0.5


def test_an_unknown_combination_names_the_choices():
    from kbuilder.errors import UsageError

    with pytest.raises(UsageError, match="did you mean 'vote'"):
        combine.check_method("vot")


def test_bootstrap_resamples_the_training_set_with_its_seed():
    from kbuilder.spec.train.data import DataSpec
    from kbuilder.train.data import load_splits

    source = {"type": "inline", "x": [[float(i)] for i in range(50)], "y": list(range(50))}
    plain = DataSpec.model_validate({"source": source, "validation": {"type": "none"}})
    bagged = DataSpec.model_validate({"source": source, "validation": {"type": "none"}, "bootstrap": 3})
    base = load_splits(plain, spec_dir=None, data_dir=None, input_shape=(1,), seed=0).train
    once = load_splits(bagged, spec_dir=None, data_dir=None, input_shape=(1,), seed=0).train
    again = load_splits(bagged, spec_dir=None, data_dir=None, input_shape=(1,), seed=0).train
    assert len(once) == len(base) == 50
    assert np.array_equal(once.y, again.y)  # the seed fixes the resample: a resumed member sees the same data
    assert len(set(once.y.tolist())) < 50  # drawn with replacement: some samples twice, some left out
    assert np.array_equal(once.x[:, 0].astype(int), once.y)  # inputs and labels stay paired


# -- real ensembles of tiny runs --------------------------------------------------------------


def blobs_spec(path, *, epochs=1):
    """Three classes of 2-D points; the model outputs logits (so members must be softmaxed) and
    has one of kbuilder's own layers (so members load through its registry)."""
    rng = np.random.default_rng(0)
    centers = np.array([[0.0, 2.0], [2.0, -1.0], [-2.0, -1.0]])
    y = np.arange(60) % 3
    x = centers[y] + rng.normal(scale=0.9, size=(60, 2))
    test_y = np.arange(30) % 3
    test_x = np.round(centers[test_y] + rng.normal(scale=0.9, size=(30, 2)), 3)
    data = {
        "type": "inline",
        "x": np.round(x, 3).tolist(),
        "y": y.tolist(),
        "test_x": test_x.tolist(),
        "test_y": test_y.tolist(),
    }
    path.write_text(f"""
name: blobs
inputs:
  point: {{shape: [2]}}
layers:
  - dense: {{name: hidden, units: 8, activation: relu}}
  - scaled_tanh: {{name: squash}}
  - dense: {{name: logits, units: 3}}
train:
  data:
    source: {json.dumps(data)}
    validation: {{type: none}}
    repeat: 5
  optimizer: {{type: adam, learning_rate: 0.05}}
  loss: sparse_categorical_crossentropy
  epochs: {epochs}
  batch_size: 16
  seed: 0
""")
    return path, test_x.astype("float32"), test_y


def run_cli(argv):
    from kbuilder.cli import app as cli

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = cli.main(argv)
    return code, out.getvalue(), err.getvalue()


def backend_args():
    from kbuilder.backend import active_backend

    return ["--backend", active_backend() or "tensorflow"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One real ensemble: a logits spec trained 3 times (seeds 0, 1, 2) with bagging, exported."""
    folder = tmp_path_factory.mktemp("ensemble")
    spec, test_x, test_y = blobs_spec(folder / "blobs.yaml")
    out = folder / "ens"
    code, stdout, stderr = run_cli(
        [
            "ensemble",
            str(spec),
            "--members",
            "3",
            "--bagging",
            "--out",
            str(out),
            "--quiet",
            "--format",
            "json",
            *backend_args(),
        ]
    )
    assert code == 0, stdout + stderr
    return {"out": out, "report": json.loads(stdout), "x": test_x, "y": test_y, "spec": spec}


def test_members_are_ordinary_runs_with_their_seed_and_resample(trained):
    report, out = trained["report"], trained["out"]
    assert [m["seed"] for m in report["members"]] == [0, 1, 2]
    assert [m["bootstrap"] for m in report["members"]] == [0, 1, 2]
    for member in report["members"]:
        run = out / "members" / member["member"]
        assert (
            (run / "spec.yaml").is_file()
            and (run / "last.keras").is_file()
            and (run / "history.json").is_file()
        )
        resolved = (run / "spec.yaml").read_text()
        assert f"seed: {member['seed']}" in resolved and f"bootstrap: {member['bootstrap']}" in resolved
        assert member["outputs"] == "logits"
        # Our figures (softmax of the outputs, numpy cross-entropy) equal Keras's own evaluation of the run.
        assert member["test_accuracy"] == pytest.approx(member["run_test_accuracy"], abs=1e-6)
        assert member["test_loss"] == pytest.approx(member["run_test_loss"], rel=1e-4)


def test_the_ensemble_figures_are_the_average_of_the_member_probabilities(trained):
    import keras

    report, out, x, y = trained["report"], trained["out"], trained["x"], trained["y"]
    probs = []
    for member in report["members"]:
        model = keras.saving.load_model(out / "members" / member["member"] / "last.keras", safe_mode=True)
        probs.append(
            keras.ops.convert_to_numpy(keras.ops.softmax(model(x, training=False))).astype("float64")
        )
    mean = np.mean(probs, axis=0)
    figures = report["combinations"]["average"]
    assert figures["test_accuracy"] == pytest.approx(float(np.mean(mean.argmax(-1) == y)))
    assert figures["test_loss"] == pytest.approx(
        float(-np.mean(np.log(mean[np.arange(len(y)), y]))), rel=1e-5
    )
    assert report["test_accuracy"] == figures["test_accuracy"]  # --combine average is the default
    on_disk = json.loads((out / "metrics.json").read_text())
    assert on_disk["combinations"] == report["combinations"] and len(on_disk["members"]) == 3
    assert report["best_member_test_accuracy"] == max(m["test_accuracy"] for m in report["members"])


def test_the_exported_model_reloads_and_equals_the_in_memory_average(trained):
    import keras

    out, x = trained["out"], trained["x"]
    export = out / "export"
    manifest = json.loads((export / "manifest.json").read_text())
    assert manifest["check"]["max_abs_diff"]["model.keras"] <= 1e-5
    assert [m["member"] for m in manifest["members"]] == [m["member"] for m in trained["report"]["members"]]
    model = keras.saving.load_model(export / "model.keras", safe_mode=True)
    assert [layer.name for layer in model.layers if layer.name.startswith("member_")][:3] == [
        "member_0",
        "member_1",
        "member_2",
    ]
    inner = [type(layer).__name__ for layer in model.get_layer("member_0").layers]
    assert "ScaledTanh" in inner  # kbuilder's custom layer, restored by safe_mode loading
    reloaded = keras.ops.convert_to_numpy(model(x, training=False))
    members = [
        keras.saving.load_model(out / "members" / m["member"] / "last.keras", safe_mode=True)
        for m in trained["report"]["members"]
    ]
    expected = np.mean(
        [keras.ops.convert_to_numpy(keras.ops.softmax(m(x, training=False))) for m in members], axis=0
    )
    np.testing.assert_allclose(reloaded, expected, atol=1e-5)
    np.testing.assert_allclose(reloaded.sum(axis=-1), 1.0, atol=1e-5)  # probabilities, not logits
    assert trained["report"]["model_check"]["max_abs_diff_vs_average"] <= 1e-5


def test_finished_runs_combine_by_vote_without_training_again(trained, tmp_path):
    runs = [str(trained["out"] / "members" / m["member"]) for m in trained["report"]["members"]]
    code, stdout, stderr = run_cli(
        [
            "ensemble",
            *runs,
            "--combine",
            "vote",
            "--no-export",
            "--out",
            str(tmp_path / "vote"),
            "--format",
            "plain",
            *backend_args(),
        ]
    )
    assert code == 0, stderr
    assert "training" not in stderr and "ensemble (vote) *" in stdout
    metrics = json.loads((tmp_path / "vote" / "metrics.json").read_text())
    assert (
        metrics["combine"] == "vote"
        and metrics["test_accuracy"] == metrics["combinations"]["vote"]["test_accuracy"]
    )
    assert [t["trained"] for t in metrics["training"]] == [False, False, False]
    assert (
        metrics["combinations"] == trained["report"]["combinations"]
    )  # same members, same test set, same figures
    assert not (tmp_path / "vote" / "export").exists()


def test_a_finished_ensemble_is_not_overwritten(trained):
    code, _, stderr = run_cli(
        [
            "ensemble",
            str(trained["spec"]),
            "--members",
            "3",
            "--bagging",
            "--out",
            str(trained["out"]),
            *backend_args(),
        ]
    )
    assert code == 2 and "holds a finished ensemble" in stderr


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--members", "1"], "at least 2 members"),
        (["--members", "2", "--combine", "mean"], "unknown combination 'mean'"),
        (["--members", "2", "--set", "train.seed=-1"], "train.seed"),
    ],
)
def test_bad_requests_exit_2_before_training(tmp_path, argv, message):
    spec, _, _ = blobs_spec(tmp_path / "blobs.yaml")
    code, _, stderr = run_cli(["ensemble", str(spec), *argv, "--out", str(tmp_path / "e"), *backend_args()])
    assert code == 2 and message in stderr, stderr
    assert not (tmp_path / "e").exists()  # refused before anything is written


def test_a_directory_that_is_no_run_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    code, stdout, _ = run_cli(
        [
            "ensemble",
            str(tmp_path / "empty"),
            str(tmp_path / "empty"),
            "--out",
            str(tmp_path / "e"),
            "--format",
            "json",
        ]
    )
    report = json.loads(stdout)
    assert code == 2 and report["error"] == "invalid run directory" and "spec.yaml" in report["problems"][0]
    assert not (tmp_path / "e").exists()


def test_an_interrupted_ensemble_continues_with_the_same_command(trained, tmp_path):
    import shutil

    out = tmp_path / "ens"
    shutil.copytree(trained["out"], out)
    for leftover in ("metrics.json", "export"):
        path = out / leftover
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    last = trained["report"]["members"][-1]["member"]
    shutil.rmtree(out / "members" / last)  # as if the ensemble stopped before its last member
    code, _, stderr = run_cli(
        ["ensemble", str(trained["spec"]), "--members", "3", "--out", str(out), *backend_args()]
    )
    assert code == 2 and "other members or settings" in stderr  # without --bagging it is another plan
    code, stdout, stderr = run_cli(
        [
            "ensemble",
            str(trained["spec"]),
            "--members",
            "3",
            "--bagging",
            "--out",
            str(out),
            "--quiet",
            "--no-export",
            "--format",
            "json",
            *backend_args(),
        ]
    )
    assert code == 0, stderr
    report = json.loads(stdout)
    assert [t["trained"] for t in report["training"]] == [False, False, True]
    assert f"training {last}" in stderr
    before, after = trained["report"]["members"], report["members"]
    assert [m["test_loss"] for m in after[:2]] == [m["test_loss"] for m in before[:2]]
    assert after[2]["test_loss"] == pytest.approx(
        before[2]["test_loss"], rel=1e-4
    )  # same seed and resample: same member


def test_members_trained_on_other_inputs_are_refused(trained, tmp_path):
    import shutil

    runs = []
    for member in trained["report"]["members"][:2]:
        runs.append(tmp_path / member["member"])
        shutil.copytree(trained["out"] / "members" / member["member"], runs[-1])
    spec = runs[1] / "spec.yaml"
    spec.write_text(
        spec.read_text().replace("    preprocess: []", "    preprocess:\n    - {type: rescale, scale: 0.5}")
    )
    code, stdout, _ = run_cli(
        ["ensemble", *map(str, runs), "--out", str(tmp_path / "e"), "--format", "json", *backend_args()]
    )
    report = json.loads(stdout)
    assert code == 2, report
    assert "trained on other inputs" in report["problems"][0] and "data.preprocess" in report["problems"][0]
    assert not (tmp_path / "e" / "metrics.json").exists()
