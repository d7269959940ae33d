"""Class names, the spec's `train.data.classes`, and refused exports (no training needed)."""

from __future__ import annotations

import json

import pytest

import kbuilder.api as kb
from kbuilder.errors import DataError, SpecError, UsageError
from kbuilder.train.classes import check_class_count, keras_dataset_classes


def test_known_class_names():
    assert len(keras_dataset_classes("cifar100")) == 100
    assert len(set(keras_dataset_classes("cifar100"))) == 100
    assert len(keras_dataset_classes("cifar100", "coarse")) == 20
    assert keras_dataset_classes("fashion_mnist")[9] == "Ankle boot"
    assert keras_dataset_classes("cifar10")[0] == "airplane"


def test_class_count_must_match_the_outputs():
    with pytest.raises(DataError, match="3 classes but the model has 10"):
        check_class_count(["a", "b", "c"], 10, given=True)
    assert check_class_count(["a", "b", "c"], 10, given=False) is None
    assert check_class_count(["no", "yes"], 1, given=True) == ["no", "yes"]


def test_repeated_class_names_are_refused():
    with pytest.raises(SpecError, match="distinct"):
        kb.load("mnist_mlp", ["train.data.classes=[a, b, a]"])


@pytest.mark.slow
def test_a_missing_extra_names_the_pip_command(tmp_path, monkeypatch):
    from kbuilder import export

    monkeypatch.setitem(export.EXTRA_MODULES, "onnx", ("kbuilder_no_such_module",))
    with pytest.raises(UsageError, match=r'pip install "kbuilder\[onnx\]"'):
        kb.export("mnist_mlp", tmp_path / "out", formats=["onnx"])
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_exporting_a_spec_says_untrained(tmp_path, capsys):
    from kbuilder.cli.app import main

    assert main(["export", "mnist_mlp", str(tmp_path / "out")]) == 0
    assert "UNTRAINED" in capsys.readouterr().err
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["trained"] is False
