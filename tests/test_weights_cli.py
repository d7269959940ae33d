"""`--weights` on build, check, train, export and predict, from a real (tiny) run directory,
its export, and weights files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import kbuilder.api as kb
from kbuilder.cli.app import main
from tests.conftest import DATASETS

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (DATASETS / "mnist.npz").is_file(), reason="needs the offline MNIST"),
]
TINY_RUN = ["train.epochs=1", "train.data.limit=600", "train.data.test_limit=200", "train.batch_size=100"]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("weights_run") / "run"
    kb.train("mnist_mlp", TINY_RUN, data_dir=DATASETS, out=out, verbose=0)
    return out


def _samples() -> np.ndarray:
    return np.random.default_rng(0).uniform(-1, 1, size=(5, 28, 28)).astype("float32")


def _trained_outputs(run: Path) -> np.ndarray:
    from kbuilder.use.source import load_trained

    return np.asarray(load_trained(run).model(_samples()))


def test_build_loads_a_run_directory_and_prints_the_plan(run, capsys):
    assert main(["build", "mnist_mlp", "--weights", str(run), "-f", "plain"]) == 0
    out = capsys.readouterr().out
    assert "fc1     loaded  fc1 (2 tensors)" in out and "3 layers loaded, 0 new, 0 skipped" in out
    built = kb.build("mnist_mlp", weights=run)
    np.testing.assert_allclose(
        np.asarray(built.model(_samples())), _trained_outputs(run), rtol=1e-6, atol=1e-6
    )


def test_check_with_weights_reports_the_plan_in_json(run, capsys):
    assert main(["check", "mnist_mlp", "--weights", str(run / "best.keras"), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["ok"] and document["weights"]["counts"] == {"loaded": 3, "new": 0, "skipped": 0}
    assert [row["status"] for row in document["weights"]["layers"]] == ["loaded"] * 3


def test_export_of_a_spec_with_weights_is_not_untrained_and_loads_as_a_source(run, tmp_path, capsys):
    out = tmp_path / "export"
    assert main(["export", "mnist_mlp", str(out), "--weights", str(run), "--no-verify"]) == 0
    captured = capsys.readouterr()
    assert "UNTRAINED" not in captured.err + captured.out
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["weights"]["loaded"] == 3 and manifest["weights"]["from"].endswith("best.keras")
    built = kb.build("mnist_mlp", weights=out)  # an export directory is a source too
    np.testing.assert_allclose(
        np.asarray(built.model(_samples())), _trained_outputs(run), rtol=1e-6, atol=1e-6
    )
    assert main(["export", str(run), str(tmp_path / "again"), "--weights", str(run)]) == 2


def test_train_starts_from_the_weights_once_and_records_the_plan(run, tmp_path, capsys):
    out = tmp_path / "finetuned"
    args = ["train", "mnist_mlp", "--weights", str(run), "--out", str(out), "--no-export", "--quiet"]
    code = main(
        [*args, "--data-dir", str(DATASETS), *(f"--set={o}" for o in TINY_RUN), "--set", "train.epochs=1"]
    )
    assert code == 0, capsys.readouterr().err
    plan = json.loads((out / "weights_plan.json").read_text())
    assert plan["counts"]["loaded"] == 3 and plan["source"].endswith("best.keras")
    spec = (out / "spec.yaml").read_text()
    assert str(run.resolve()) in spec  # the resolved spec records where the run started from
    first = json.loads((run / "metrics.json").read_text())["test_accuracy"]
    second = json.loads((out / "metrics.json").read_text())["test_accuracy"]
    assert second >= first - 0.05  # a second epoch from the first's weights, not from scratch


def test_predict_with_other_weights_uses_them(run, tmp_path, capsys):
    zeros = kb.build("mnist_mlp", weights=False)
    for layer in zeros.model.layers:
        layer.set_weights([np.zeros_like(w) for w in layer.get_weights()])
    zeros.model.save_weights(tmp_path / "zeros.weights.h5")
    np.save(tmp_path / "x.npy", (np.random.default_rng(1).uniform(0, 255, (3, 28, 28))).astype("uint8"))
    args = ["predict", str(run), str(tmp_path / "x.npy"), "--json", "--top-k", "10"]
    assert main([*args, "--weights", str(tmp_path / "zeros.weights.h5")]) == 0
    rows = json.loads(capsys.readouterr().out)["predictions"]
    probabilities = [entry["probability"] for row in rows for entry in row["top"]]
    np.testing.assert_allclose(probabilities, 0.1, rtol=1e-6)  # all-zero logits: uniform
    assert main(args) == 0
    trained = json.loads(capsys.readouterr().out)["predictions"]
    assert max(entry["probability"] for row in trained for entry in row["top"]) > 0.2


def test_a_resumed_run_restores_its_checkpoint_and_reads_no_weights(run, tmp_path):
    import shutil

    import keras

    from kbuilder.errors import Interrupted
    from kbuilder.spec import load_spec
    from kbuilder.train import TrainOptions, train
    from kbuilder.zoo import spec_path

    class StopAfterFirstEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                raise KeyboardInterrupt  # what Ctrl-C does in the middle of a run

    source = shutil.copy(run / "best.keras", tmp_path / "start.keras")
    overrides = [*TINY_RUN, "train.epochs=2", f"weights.from={source}"]
    out = tmp_path / "run"
    options = {"data_dir": DATASETS, "out": out, "verbose": 0, "export": False}
    with pytest.raises(Interrupted):
        train(
            load_spec(spec_path("mnist_mlp"), overrides=overrides),
            TrainOptions(**options, extra_callbacks=[StopAfterFirstEpoch()]),
        )
    assert json.loads((out / "weights_plan.json").read_text())["counts"]["loaded"] == 3
    Path(source).unlink()  # a resumed run that read the weights again would fail here
    result = train(load_spec(out / "spec.yaml"), TrainOptions(**options))
    assert result.metrics["epochs_run"] == 2
