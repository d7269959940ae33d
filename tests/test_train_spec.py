"""The `train` section validates instantly and refuses bad values with located messages."""

from __future__ import annotations

import sys

import pytest

from kbuilder.errors import SpecError
from kbuilder.spec import load_spec
from tests.test_train_support import write_spec


def test_defaults_are_filled_in(tmp_path):
    train = load_spec(write_spec(tmp_path)).spec.train
    assert train.optimizer.type == "sgd" and train.optimizer.momentum == 0.9
    assert train.performance.jit_compile == "auto"
    assert train.data.source.type == "keras"
    assert train.distribute.num_processes == 1


def test_names_stand_for_mappings(tmp_path):
    loaded = load_spec(
        write_spec(tmp_path), overrides=["train.optimizer=adam", "train.loss=categorical_crossentropy"]
    )
    assert loaded.spec.train.optimizer.type == "adam"
    assert loaded.spec.train.optimizer.learning_rate == 0.001
    assert loaded.spec.train.loss.name == "categorical_crossentropy"


def test_overrides_apply(tmp_path):
    loaded = load_spec(
        write_spec(tmp_path),
        overrides=[
            "train.epochs=7",
            "train.optimizer.learning_rate=0.2",
            "train.data.validation={type: test}",
            "train.optimizer.schedule={type: cosine, warmup_epochs: 1}",
        ],
    )
    train = loaded.spec.train
    assert train.epochs == 7 and train.optimizer.learning_rate == 0.2
    assert train.data.validation.type == "test"
    assert train.optimizer.schedule.type == "cosine" and train.optimizer.schedule.warmup_epochs == 1


@pytest.mark.parametrize(
    "override, words",
    [
        ("train.epochs=0", ["--set train.epochs=0", "train.epochs"]),
        ("train.epochz=3", ["epochz", "did you mean 'epochs'"]),
        ("train.optimizer.type=adamm", ["train.optimizer", "adam"]),
        ("train.data.source.name=mnst", ["train.data.source.name", "mnist"]),
        ("train.optimizer.momentum=1.5", ["train.optimizer.momentum"]),
        ("train.data.validation.fraction=1.0", ["train.data.validation.fraction"]),
        ("train.distribute.num_processes=2", ["coordinator_address"]),
        ("train.callbacks=[{type: early_stopping}, {type: early_stopping}]", ["listed twice"]),
    ],
)
def test_bad_overrides_are_refused_with_a_clear_error(tmp_path, override, words):
    with pytest.raises(SpecError) as caught:
        load_spec(write_spec(tmp_path), overrides=[override])
    message = str(caught.value)
    for word in words:
        assert word in message, message


def test_schedules_and_plateau_do_not_mix(tmp_path):
    with pytest.raises(SpecError, match="reduce_lr_on_plateau"):
        load_spec(
            write_spec(tmp_path),
            overrides=[
                "train.optimizer.schedule={type: step, every_epochs: 2}",
                "train.callbacks=[{type: reduce_lr_on_plateau}]",
            ],
        )


def test_piecewise_needs_one_more_factor_than_boundaries(tmp_path):
    with pytest.raises(SpecError, match="factors"):
        load_spec(
            write_spec(tmp_path),
            overrides=["train.optimizer.schedule={type: piecewise, boundaries: [2, 4], factors: [1, 0.1]}"],
        )


def test_inline_arrays_must_pair_up(tmp_path):
    with pytest.raises(SpecError, match="samples"):
        load_spec(
            write_spec(tmp_path), overrides=["train.data.source={type: inline, x: [[0, 0], [1, 1]], y: [0]}"]
        )


@pytest.mark.subprocess
def test_the_spec_module_imports_no_keras():
    code = (
        "import sys; import kbuilder.spec.train; print('keras' in sys.modules or 'tensorflow' in sys.modules)"
    )
    import subprocess

    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "False"
