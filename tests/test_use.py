"""kbuilder evaluate, inspect and report on a small CNN trained for one epoch on MNIST.

The evaluation's figures are checked against scikit-learn computed here from the model's own
predictions on the whole MNIST test set; the figures are real PNG files; bad inputs are
refused with exit 2, naming the file, and leave nothing behind."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image
from sklearn import metrics as skm

from kbuilder import api as kb
from kbuilder.cli.app import main
from kbuilder.use.metrics import calibration, most_confident_mistakes
from tests.conftest import DATASETS

TINY = {
    "name": "tiny_cnn",
    "inputs": {"image": {"shape": [28, 28, 1]}},
    "blocks": {
        "conv_pool": {
            "params": {"filters": None},
            "layers": [
                {
                    "conv2d": {
                        "name": "conv",
                        "filters": "${filters}",
                        "kernel_size": 3,
                        "padding": "same",
                        "activation": "relu",
                    }
                },
                {"max_pooling2d": {"name": "pool", "pool_size": 2}},
            ],
        }
    },
    "layers": [
        {"block": {"use": "conv_pool", "name": "stage1", "args": {"filters": 4}}},
        {"block": {"use": "conv_pool", "name": "stage2", "args": {"filters": 8}}},
        {"flatten": {"name": "flat"}},
        {"dense": {"name": "output", "units": 10, "activation": "softmax"}},
    ],
    "train": {
        "data": {
            "source": {"type": "keras", "name": "mnist"},
            "limit": 2048,
            "validation": {"type": "none"},
            "preprocess": [
                {"type": "rescale", "scale": 1 / 255},
                {"type": "normalize"},
                {"type": "add_channel_axis"},
            ],
        },
        "optimizer": {"type": "adam", "learning_rate": 0.003},
        "loss": "sparse_categorical_crossentropy",
        "metrics": ["accuracy"],
        "epochs": 1,
        "batch_size": 128,
        "seed": 0,
    },
}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "tiny"
    kb.train(TINY, data_dir=DATASETS, out=out, verbose=0, export=False)
    return out


@pytest.fixture(scope="module")
def mnist():
    with np.load(DATASETS / "mnist.npz") as data:
        return data["x_test"], data["y_test"].astype("int64")


def is_png(path) -> bool:
    with Image.open(path) as image:
        return image.format == "PNG" and image.size[0] > 100 and image.size[1] > 100


@pytest.mark.slow
def test_evaluation_matches_scikit_learn_on_the_mnist_test_set(run_dir, mnist, tmp_path):
    import keras

    import kbuilder.layers  # noqa: F401

    document = kb.evaluate(run_dir, data_dir=DATASETS, out=tmp_path / "eval")
    x, y = mnist
    metrics = json.loads((run_dir / "metrics.json").read_text())
    stats = metrics["data"]["normalize_statistics"][0]
    model = keras.saving.load_model(run_dir / "last.keras")
    inputs = (x.astype("float32") * np.float32(1 / 255) - np.float32(stats["mean"])) / np.float32(
        stats["std"]
    )
    probs = np.asarray(model.predict(inputs[..., None], batch_size=128, verbose=0), dtype="float64")
    probs /= probs.sum(axis=1, keepdims=True)
    predicted = probs.argmax(axis=1)
    found = document["metrics"]
    assert document["data"]["samples"] == 10000 and document["data"]["split"] == "test"
    assert found["accuracy"] == skm.accuracy_score(y, predicted)
    assert found["accuracy"] == pytest.approx(metrics["test_accuracy"], abs=1e-6)
    assert found["loss"] == pytest.approx(skm.log_loss(y, probs), rel=1e-6)
    assert found["top5_accuracy"] == pytest.approx(skm.top_k_accuracy_score(y, probs, k=5))
    assert found["confusion_matrix"] == skm.confusion_matrix(y, predicted).tolist()
    report = skm.classification_report(y, predicted, output_dict=True, zero_division=0)
    for row in found["per_class"]:
        expected = report[str(row["class"])]
        assert row["precision"] == pytest.approx(expected["precision"])
        assert row["recall"] == pytest.approx(expected["recall"])
        assert row["f1"] == pytest.approx(expected["f1-score"])
        assert row["support"] == expected["support"]
    assert found["averages"]["macro"]["f1"] == pytest.approx(report["macro avg"]["f1-score"])
    assert found["averages"]["weighted"]["recall"] == pytest.approx(report["weighted avg"]["recall"])
    wrong = document["mistakes"]
    assert wrong and all(predicted[m["index"]] != y[m["index"]] for m in wrong)
    assert [m["probability"] for m in wrong] == sorted((m["probability"] for m in wrong), reverse=True)
    on_disk = json.loads((tmp_path / "eval" / "evaluation.json").read_text())
    assert on_disk["metrics"]["accuracy"] == found["accuracy"]
    for name in ("confusion_matrix", "reliability", "mistakes"):
        assert is_png(document["files"][name])
    assert not (run_dir / "evaluation.json").exists()  # -o: the run directory is left alone


def test_expected_calibration_error_by_its_definition():
    rng = np.random.default_rng(0)
    confidence = rng.uniform(0.1, 1.0, 5000)
    correct = (rng.uniform(size=5000) < confidence**1.5).astype("int64")
    found = calibration(correct, confidence, bins=10)
    bins = np.minimum((confidence * 10).astype(int), 9)  # equal-width bins of [0, 1]
    expected = sum(
        abs(correct[bins == b].mean() - confidence[bins == b].mean()) * (bins == b).sum()
        for b in range(10)
        if (bins == b).any()
    ) / len(confidence)
    assert found["expected_calibration_error"] == pytest.approx(expected, rel=1e-9)
    assert sum(found["bin_count"]) == 5000


def test_most_confident_mistakes_come_first():
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    assert most_confident_mistakes(np.array([1, 1, 1, 0]), probs, 5) == [0, 3, 2]


@pytest.mark.slow
def test_train_writes_the_report_and_evaluate_refreshes_it(run_dir):
    page = (run_dir / "report.html").read_text()
    for section in ("metrics", "spec", "layers", "diagram", "curves", "evaluation"):
        assert f"id='{section}'" in page
    assert "not evaluated yet" in page and "http://" not in page.replace("http://www.w3.org", "")
    document = kb.evaluate(run_dir, data_dir=DATASETS, mistakes=10)
    assert len(document["mistakes"]) == 10 and (run_dir / "evaluation.json").is_file()
    page = (run_dir / "report.html").read_text()
    for section in ("confusion", "per-class", "calibration", "mistakes"):
        assert f"id='{section}'" in page
    assert page.count("data:image/png;base64,") == 4  # curves, confusion, reliability, mistakes


@pytest.mark.slow
def test_an_ensemble_evaluates_its_averaged_model(run_dir, tmp_path):
    twin = shutil.copytree(run_dir, tmp_path / "twin")  # the same run twice is refused: a copy
    kb.ensemble([str(run_dir), str(twin)], data_dir=DATASETS, out=tmp_path / "ens", verbose=0)
    document = kb.evaluate(tmp_path / "ens", data_dir=DATASETS, out=tmp_path / "ens_eval")
    single = kb.evaluate(run_dir, model="last", data_dir=DATASETS, out=tmp_path / "single")
    assert document["kind"] == "ensemble" and len(document["members"]) == 2
    assert document["metrics"]["accuracy"] == single["metrics"]["accuracy"]  # the mean of two equal members


@pytest.mark.slow
def test_evaluate_on_another_source(run_dir, mnist, tmp_path):
    x, y = mnist
    np.savez(tmp_path / "few.npz", x_train=x[:300], y_train=y[:300])
    document = kb.evaluate(run_dir, data=str(tmp_path / "few.npz"), out=tmp_path / "few")
    assert document["data"]["samples"] == 300 and document["data"]["split"] == "all"


@pytest.mark.slow
def test_inspect_writes_feature_maps_filters_and_grad_cam(run_dir, mnist, tmp_path):
    x, _ = mnist
    Image.fromarray(x[0]).save(tmp_path / "digit.png")
    found = kb.inspect(run_dir, tmp_path / "digit.png", out=tmp_path / "look")
    names = sorted(p.rsplit("/", 1)[1] for p in found["files"])
    assert names == sorted(
        [f"feature_maps_{layer}.png" for layer in found["layers"]]
        + ["filters_stage1-conv.png", "gradcam.png"]
    )
    assert len(found["layers"]) == 4 and found["grad_cam"]["layer"] == "stage2-conv"
    assert all(is_png(p) for p in found["files"])
    picked = kb.inspect(
        run_dir, tmp_path / "digit.png", layers=["stage1-pool"], class_index=3, out=tmp_path / "l2"
    )
    assert picked["layers"] == ["stage1-pool"] and picked["grad_cam"]["class"] == 3


def bad_images(folder):
    (folder / "text.png").write_text("not an image")
    Image.new("L", (40, 40)).save(folder / "big.png")
    Image.new("RGB", (28, 28)).save(folder / "colour.png")
    Image.new("L", (7000, 6000)).save(folder / "bomb.png")  # 42 megapixels, a few kB of file
    return {
        "text.png": "not an image",
        "big.png": "40x40 pixels",
        "colour.png": "3 channels",
        "bomb.png": "7000x6000 pixels",
    }


@pytest.mark.slow
def test_bad_inputs_exit_2_naming_the_file_and_write_nothing(run_dir, tmp_path, capsys):
    for name, message in bad_images(tmp_path).items():
        out = tmp_path / f"out-{name}"
        code = main(["inspect", str(run_dir), str(tmp_path / name), "-o", str(out), "--json"])
        document = json.loads(capsys.readouterr().out)
        assert code == 2 and document["exit_code"] == 2, name
        assert name in document["problems"][0] and message in document["problems"][0]
        assert not out.exists()
    for command in (
        ["evaluate", str(tmp_path)],
        ["report", str(tmp_path)],
        ["inspect", str(tmp_path), "x.png"],
    ):
        code = main([*command, "--json"])
        document = json.loads(capsys.readouterr().out)
        assert (
            code == 2
            and str(tmp_path) in document["problems"][0]
            and "not a run directory" in document["problems"][0]
        )
    assert not (tmp_path / "evaluation.json").exists() and not (tmp_path / "report.html").exists()


@pytest.mark.slow
def test_a_study_evaluates_and_reports_its_best_trial(run_dir, tmp_path):
    study = tmp_path / "study"
    study.mkdir()
    best = {"trial": 3, "state": "complete", "val_accuracy": 0.9, "run_dir": str(run_dir.resolve())}
    summary = {"study": "s", "metric": "val_accuracy", "best": best, "trials": [best], "plots": {}}
    (study / "summary.json").write_text(json.dumps(summary))  # the layout `kbuilder tune` writes
    document = kb.evaluate(study, data_dir=DATASETS, model="last")
    single = kb.evaluate(run_dir, model="last", data_dir=DATASETS, out=tmp_path / "single")
    assert document["kind"] == "study" and document["run_dir"] == str(run_dir.resolve())
    assert document["metrics"]["accuracy"] == single["metrics"]["accuracy"]
    page = (study / "report.html").read_text()
    assert all(f"id='{section}'" in page for section in ("metrics", "trials", "plots", "confusion"))


@pytest.mark.slow
@pytest.mark.subprocess
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_grad_cam_is_the_same_on_every_backend(run_dir, mnist, tmp_path, backend):
    import os
    import subprocess
    import sys

    from tests.conftest import REPO

    x, _ = mnist
    Image.fromarray(x[1]).save(tmp_path / "digit.png")
    here = kb.inspect(run_dir, tmp_path / "digit.png", out=tmp_path / "tf")
    command = [sys.executable, "-m", "kbuilder.cli.app", "inspect", str(run_dir), str(tmp_path / "digit.png")]
    env = {**os.environ, "KERAS_BACKEND": backend}
    done = subprocess.run(
        [*command, "-o", str(tmp_path / backend), "--backend", backend, "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    there = json.loads(done.stdout)
    assert there["predicted"] == here["predicted"] and there["grad_cam"]["layer"] == here["grad_cam"]["layer"]
    np.testing.assert_allclose(there["grad_cam"]["map"], here["grad_cam"]["map"], atol=1e-3)


@pytest.mark.slow
def test_a_regression_run_gets_mse_mae_r2_and_a_scatter(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 3))
    y = x @ np.array([1.5, -2.0, 0.5]) + 0.1 * rng.normal(size=400)
    spec = {
        "name": "linear",
        "inputs": {"x": {"shape": [3]}},
        "layers": [{"dense": {"name": "out", "units": 1}}],
        "train": {
            "data": {
                "source": {
                    "type": "inline",
                    "x": x[:300].tolist(),
                    "y": y[:300].tolist(),
                    "test_x": x[300:].tolist(),
                    "test_y": y[300:].tolist(),
                },
                "validation": {"type": "none"},
            },
            "optimizer": {"type": "adam", "learning_rate": 0.05},
            "loss": "mean_squared_error",
            "metrics": [],
            "epochs": 3,
            "batch_size": 32,
            "seed": 0,
        },
    }
    run = tmp_path / "linear"
    kb.train(spec, out=run, verbose=0, export=False)
    document = kb.evaluate(run, out=tmp_path / "eval")
    import keras

    predicted = keras.saving.load_model(run / "last.keras").predict(x[300:].astype("float32"), verbose=0)
    assert document["task"] == "regression"
    assert document["metrics"]["mse"] == pytest.approx(skm.mean_squared_error(y[300:], predicted), rel=1e-5)
    assert document["metrics"]["mae"] == pytest.approx(skm.mean_absolute_error(y[300:], predicted), rel=1e-5)
    assert document["metrics"]["r2"] == pytest.approx(skm.r2_score(y[300:], predicted), rel=1e-5)
    assert is_png(document["files"]["predicted_vs_true"])
