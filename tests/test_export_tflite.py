"""`kbuilder export --to tflite [--quantize float16|int8]`: the LiteRT file, run with
ai-edge-litert, gives the model's outputs (quantized: finite, right shapes, figures in the
manifest); int8 is calibrated on the spec's train.data. Float32 TFLite files and the refusal
of a layer TFLite cannot carry are tested with ONNX in test_export_onnx.py (one conversion each)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

from kbuilder.cli.app import main
from tests.conftest import DATASETS, SPECS

pytestmark = pytest.mark.slow


def tensor_types(path) -> set[str]:
    interpreter = Interpreter(model_path=str(path))
    return {np.dtype(detail["dtype"]).name for detail in interpreter.get_tensor_details()}


def test_lenet5_float16_through_the_cli(tmp_path, capsys):
    """Float32 TFLite files are checked with ONNX in test_export_onnx (one conversion)."""
    half = tmp_path / "f16"
    assert (
        main(["export", str(SPECS / "lenet5.yaml"), str(half), "--to", "tflite", "--quantize", "float16"])
        == 0
    )
    manifest = json.loads((half / "manifest.json").read_text())
    assert manifest["tflite_quantization"] == "float16"
    quantized = manifest["check"]["quantized"]["model.tflite"]
    assert quantized["quantization"] == "float16" and 0 < quantized["max_abs_diff"] < 1.0
    assert "model.tflite" not in manifest["check"]["tolerance_ratio"]  # not held to 1e-5
    assert "float16" in tensor_types(half / "model.tflite")
    # LeNet-5's 60,840 float32 weights take 238 KiB; as float16 about half of that.
    assert (half / "model.tflite").stat().st_size < 0.7 * 60840 * 4


def test_int8_is_calibrated_on_the_specs_training_data(tmp_path, capsys):
    out = tmp_path / "int8"
    code = main(
        [
            "export",
            str(SPECS / "lenet5_modern.yaml"),
            str(out),
            "--to",
            "tflite",
            "--quantize",
            "int8",
            "--data-dir",
            str(DATASETS),
            "--json",
        ]
    )
    assert code == 0, capsys.readouterr()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["check"]["quantized"]["model.tflite"]["quantization"] == "int8"
    assert "int8" in tensor_types(out / "model.tflite")


def test_quantize_needs_tflite_and_int8_needs_training_data(tmp_path, capsys):
    assert main(["export", str(SPECS / "lenet5.yaml"), str(tmp_path / "a"), "--quantize", "int8"]) == 2
    assert "add --to tflite" in capsys.readouterr().err
    assert (
        main(
            [
                "export",
                str(SPECS / "xor_mlp.yaml"),
                str(tmp_path / "b"),
                "--to",
                "tflite",
                "--quantize",
                "int4",
            ]
        )
        == 2
    )
    assert "unknown quantization 'int4'" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
