"""`kbuilder predict` and trained exports, on a tiny real LeNet-5 run: real PNG files, the
raw-input SavedModel signature from plain Python, and every refused input."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import kbuilder.api as kb
from kbuilder.cli.app import main
from tests.conftest import DATASETS

pytestmark = pytest.mark.skipif(not (DATASETS / "mnist.npz").is_file(), reason="needs the offline MNIST")
TINY = ["train.epochs=1", "train.data.limit=2000", "train.data.test_limit=1000"]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("predict") / "run"
    kb.train("lenet5_modern", TINY, data_dir=DATASETS, out=out, verbose=0, export_formats=["tflite"])
    return out


@pytest.fixture(scope="module")
def mnist_test() -> tuple[np.ndarray, np.ndarray]:
    with np.load(DATASETS / "mnist.npz") as data:
        return data["x_test"][:1000], data["y_test"][:1000]


@pytest.mark.slow
def test_png_files_predict_as_the_run_evaluates_its_arrays(run, mnist_test, tmp_path):
    import keras

    from kbuilder.spec import load_spec
    from kbuilder.train.data import Arrays, Splits
    from kbuilder.train.preprocess import preprocess_splits

    x, y = mnist_test
    folder = tmp_path / "digits"
    folder.mkdir()
    for i, image in enumerate(x):
        Image.fromarray(image).save(folder / f"{i:04d}.png")
    result = kb.predict(run, [folder], which="last", top_k=3)
    # The run's own preprocessing of the arrays, with statistics recomputed from its training data.
    metrics = json.loads((run / "metrics.json").read_text())
    spec = load_spec(run / "spec.yaml").spec
    with np.load(DATASETS / "mnist.npz") as data:
        train = Arrays(data["x_train"][:2000], data["y_train"][:2000])
    splits, stats = preprocess_splits(
        Splits(train, None, Arrays(x, y), "mnist"),
        spec.train.data.preprocess,
        num_classes=10,
        loss_name="sparse_categorical_crossentropy",
    )
    assert stats.normalize == metrics["data"]["normalize_statistics"]
    model = keras.saving.load_model(run / "last.keras")
    expected = model.predict(splits.test.x, verbose=0)
    assert result["inputs"] == [str(folder / f"{i:04d}.png") for i in range(1000)]
    np.testing.assert_array_equal(result["class_ids"], expected.argmax(-1))
    np.testing.assert_allclose(result["probabilities"], expected, atol=1e-6, rtol=0)
    accuracy = float(np.mean(result["class_ids"] == y))
    assert accuracy == pytest.approx(metrics["test_accuracy"], abs=1e-6)
    assert result["top"][0]["top"][0]["class_name"] == str(result["class_ids"][0])
    assert len(result["top"][0]["top"]) == 3


@pytest.mark.slow
@pytest.mark.subprocess
def test_serving_raw_reproduces_the_test_accuracy_without_kbuilder(run, tmp_path):
    out = tmp_path / "export"
    assert main(["export", str(run), str(out), "--model", "last", "--to", "onnx,tflite", "--json"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["trained"]["run_dir"] == str(run)
    assert manifest["input_contract"]["raw_input"] == {
        "dtype": "uint8",
        "shape": [28, 28],
        "range": [0.0, 255.0],
    }
    assert manifest["input_contract"]["preprocess"][1]["mean"] is not None
    script = f"""
import sys, json, numpy as np
assert "kbuilder" not in sys.modules
with np.load({str(DATASETS / "mnist.npz")!r}) as d:
    x, y = d["x_test"][:1000], d["y_test"][:1000]
import tensorflow as tf
sig = tf.saved_model.load({str(out / "saved_model")!r}).signatures["serving_raw"]
r = sig(raw=tf.constant(x))
acc = {{"saved_model": float(np.mean(r["class_ids"].numpy() == y)), "name": r["class_names"][0].numpy().decode()}}
import onnxruntime as ort
s = ort.InferenceSession({str(out / "model_raw.onnx")!r}, providers=["CPUExecutionProvider"])
outs = dict(zip([o.name for o in s.get_outputs()], s.run(None, {{s.get_inputs()[0].name: x}})))
acc["onnx"] = float(np.mean(outs["class_ids"] == y))
from ai_edge_litert.interpreter import Interpreter
runner = Interpreter(model_path={str(out / "model_raw.tflite")!r}).get_signature_runner()
acc["tflite"] = float(np.mean(np.concatenate([runner(raw=x[i:i + 100])["class_ids"] for i in range(0, 1000, 100)]) == y))
assert "kbuilder" not in sys.modules
print(json.dumps(acc))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    expected = manifest["trained"]["test_accuracy"]
    assert figures["saved_model"] == pytest.approx(expected, abs=1e-6)  # float32 accuracy: the same count
    assert figures["onnx"] == pytest.approx(expected, abs=1e-6)  # float32 accuracy: the same count
    assert figures["tflite"] == pytest.approx(expected, abs=1e-6)  # float32 accuracy: the same count
    assert figures["name"] in [str(d) for d in range(10)]


def _png_header_only(path: Path, width: int, height: int) -> None:
    """A PNG whose header claims width x height grayscale pixels (a decompression bomb's shape)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    )


def _bad_inputs(folder: Path) -> dict[str, Path]:
    folder.mkdir()
    bad = {
        "unreadable": folder / "broken.png",
        "size": folder / "small.png",
        "channels": folder / "cmyk.jpg",
        "bomb": folder / "bomb.png",
        "array": folder / "rgb.npy",
    }
    bad["unreadable"].write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    Image.fromarray(np.zeros((20, 20), "uint8")).save(bad["size"])
    Image.new("CMYK", (28, 28)).save(bad["channels"])
    _png_header_only(bad["bomb"], 40000, 40000)
    np.save(bad["array"], np.zeros((2, 28, 28, 3), "uint8"))
    return bad


@pytest.mark.slow
@pytest.mark.parametrize("case", ["unreadable", "size", "channels", "bomb", "array"])
def test_bad_inputs_are_refused_naming_the_file(run, tmp_path, capsys, case):
    bad = _bad_inputs(tmp_path / "in")[case]
    good = tmp_path / "good.png"
    Image.fromarray(np.zeros((28, 28), "uint8")).save(good)
    out = tmp_path / "predictions.csv"
    code = main(["predict", str(run), str(good), str(bad), "-o", str(out), "--json"])
    document = json.loads(capsys.readouterr().out)
    assert code == 2
    assert str(bad) in " ".join(document["problems"])
    assert not out.exists()
    if case == "size":
        assert "20x20" in document["problems"][0] and "28x28" in document["problems"][0]
    if case == "bomb":
        assert "decompression bomb" in document["problems"][0]


@pytest.mark.slow
def test_a_directory_that_is_no_model_is_refused(tmp_path, capsys):
    (tmp_path / "x.png").write_bytes(b"")
    assert main(["predict", str(tmp_path), str(tmp_path / "x.png")]) == 2
    assert str(tmp_path) in capsys.readouterr().err


@pytest.mark.slow
def test_predict_formats_and_the_output_file(run, mnist_test, tmp_path, capsys):
    x, _ = mnist_test
    np.save(tmp_path / "five.npy", x[:5])
    out = tmp_path / "p.csv"
    assert main(["predict", str(run), str(tmp_path / "five.npy"), "-k", "2", "-o", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert lines[0] == "input,rank,class_id,class_name,probability" and len(lines) == 1 + 5 * 2
    assert main(["predict", str(run), str(tmp_path / "five.npy"), "--format", "markdown"]) == 0
    assert capsys.readouterr().out.count("five.npy[") == 5
    assert main(["predict", str(run), str(tmp_path / "five.npy"), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["predictions"]) == 5


@pytest.mark.slow
def test_train_exports_its_extra_formats_with_raw_inputs(run):
    manifest = json.loads((run / "export" / "manifest.json").read_text())
    assert manifest["formats"] == ["saved_model", "keras", "tflite"]
    assert manifest["raw_inputs"]["tflite"]["file"] == "model_raw.tflite"
    assert manifest["raw_inputs"]["saved_model"]["signature"] == "serving_raw"
    assert manifest["trained"]["epoch"] == 1


@pytest.mark.slow
def test_studies_exports_ensembles_and_older_runs_predict_alike(run, mnist_test, tmp_path):
    x, _ = mnist_test
    np.save(tmp_path / "ten.npy", x[:10])
    inputs = [tmp_path / "ten.npy"]
    expected = kb.predict(run, inputs, which="last")["probabilities"]
    study = tmp_path / "study"
    study.mkdir()
    (study / "summary.json").write_text(json.dumps({"best": {"trial": 0, "run_dir": str(run)}}))
    np.testing.assert_allclose(kb.predict(study, inputs, which="last")["probabilities"], expected, atol=1e-6)
    np.testing.assert_allclose(kb.predict(run / "export", inputs)["probabilities"], expected, atol=1e-6)
    older = tmp_path / "older"
    shutil.copytree(run, older)
    metrics = json.loads((older / "metrics.json").read_text())
    del metrics["data"]["input_contract"]
    (older / "metrics.json").write_text(json.dumps(metrics))
    np.testing.assert_allclose(kb.predict(older, inputs, which="last")["probabilities"], expected, atol=1e-6)
    twin = shutil.copytree(run, tmp_path / "twin")  # the same run twice is refused: a copy
    ensemble = kb.ensemble([str(run), str(twin)], data_dir=DATASETS, out=tmp_path / "ens", verbose=0)
    result = kb.predict(ensemble.directory, inputs)
    np.testing.assert_allclose(result["probabilities"], expected, atol=1e-6)
    assert result["model"]["kind"] == "ensemble"


@pytest.mark.slow
def test_an_untrained_export_is_not_a_model_to_predict_with(tmp_path, capsys):
    assert main(["export", "lenet5_modern", str(tmp_path / "bare")]) == 0
    capsys.readouterr()
    np.save(tmp_path / "one.npy", np.zeros((28, 28), "uint8"))
    assert main(["predict", str(tmp_path / "bare"), str(tmp_path / "one.npy")]) == 2
    assert "untrained" in capsys.readouterr().err
