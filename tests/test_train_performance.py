"""The `auto` performance choices that need the built model, and the oneDNN default they rest on."""

from __future__ import annotations

import dataclasses
import os
import sys

import pytest

from kbuilder.spec import load_spec
from tests.conftest import SPECS


def _cpu_settings(**changes):
    from kbuilder.train.performance import Settings

    base = Settings(
        backend="tensorflow",
        device="cpu",
        accelerator=False,
        jit_compile=True,
        fused_steps=1,
        keras_steps_per_execution=1,
        pipeline="tf_data",
        mixed_precision="float32",
        threads=None,
        onednn=True,
    )
    return dataclasses.replace(base, **changes)


def _model(name):
    from kbuilder.build import build_model

    return build_model(load_spec(SPECS / f"{name}.yaml"))


@pytest.mark.parametrize(
    ("spec", "jit"),
    [
        ("lenet5_modern", False),  # 0.4M MACs of small convolutions: oneDNN without XLA
        ("lenet5", False),
        ("fashion_cnn", True),  # 89M MACs: XLA is faster
        ("mnist_mlp", True),  # no convolutions
    ],
)
def test_xla_stays_on_except_for_small_convolutional_models(spec, jit):
    from kbuilder.spec.train import PerformanceSpec
    from kbuilder.train import performance

    settled = performance.settle_for_model(_cpu_settings(), PerformanceSpec(), _model(spec))
    assert settled.jit_compile is jit
    assert settled.fused_steps == 1 or jit


@pytest.mark.parametrize(
    "changes",
    [
        {"onednn": False},
        {"accelerator": True},
        {"backend": "jax"},
    ],
)
def test_xla_is_kept_where_the_measurement_does_not_apply(changes):
    from kbuilder.spec.train import PerformanceSpec
    from kbuilder.train import performance

    settings = _cpu_settings(**changes)
    assert performance.settle_for_model(settings, PerformanceSpec(), _model("lenet5_modern")) == settings


def test_an_explicit_jit_compile_is_never_overridden():
    from kbuilder.spec.train import PerformanceSpec
    from kbuilder.train import performance

    settings = _cpu_settings()
    assert (
        performance.settle_for_model(settings, PerformanceSpec(jit_compile=True), _model("lenet5_modern"))
        == settings
    )


@pytest.mark.parametrize(
    ("calls", "changes", "expected"),
    [
        (469, {"jit_compile": False}, 67),  # LeNet-5's epoch: 469 = 7 x 67
        (468, {"jit_compile": False}, 78),  # the largest divisor up to 100
        (60, {"jit_compile": False}, 60),  # a whole epoch in one call
        (467, {"jit_compile": False}, 1),  # a prime: one step a call, never past the epoch
        (469, {"jit_compile": True}, 1),  # XLA's fused steps are kbuilder's own
        (469, {"jit_compile": False, "backend": "jax"}, 1),  # JAX dispatches Keras's steps one by one
        (469, {"jit_compile": False, "keras_steps_per_execution": 10}, 7),  # an explicit 10
    ],
)
def test_keras_steps_per_execution_divides_the_epoch(calls, changes, expected):
    from kbuilder.spec.train import PerformanceSpec
    from kbuilder.train import performance

    explicit = changes.get("keras_steps_per_execution")
    perf = PerformanceSpec(steps_per_execution=explicit) if explicit else PerformanceSpec()
    settings = _cpu_settings(**changes)
    settled = performance.settle_keras_steps(settings, perf, calls, distributed=False, batch_callbacks=False)
    assert settled.keras_steps_per_execution == expected
    assert calls % settled.keras_steps_per_execution == 0


@pytest.mark.parametrize(("distributed", "batch_callbacks"), [(True, False), (False, True)])
def test_auto_keeps_one_step_a_call_where_steps_would_be_miscounted(distributed, batch_callbacks):
    from kbuilder.spec.train import PerformanceSpec
    from kbuilder.train import performance

    settings = _cpu_settings(jit_compile=False)
    settled = performance.settle_keras_steps(
        settings, PerformanceSpec(), 469, distributed=distributed, batch_callbacks=batch_callbacks
    )
    assert settled.keras_steps_per_execution == 1


@pytest.mark.parametrize(
    ("callbacks", "counts"),
    [
        ([], False),  # the default backup saves every epoch
        ([{"type": "backup_and_restore", "save_freq": 100}], True),
        ([{"type": "tensorboard", "update_freq": "batch"}], True),
        ([{"type": "tensorboard", "update_freq": "batch", "enabled": False}], False),
    ],
)
def test_callbacks_that_count_batches(callbacks, counts):
    from kbuilder.spec.train import TrainSpec
    from kbuilder.train.callbacks import counts_batches

    data = {"source": {"type": "keras", "name": "mnist"}}
    train = TrainSpec.model_validate({"data": data, "callbacks": callbacks})
    assert counts_batches(train) is counts


@pytest.mark.slow
def test_keras_runs_exactly_the_epoch_at_the_settled_steps_a_call():
    """Keras 3.15 rounds an epoch up to whole executions (13 steps at 4 a call: 16); at a
    divisor it runs exactly the epoch's batches, as steps_per_execution=1 would."""
    import keras
    import numpy as np
    import tensorflow as tf

    from kbuilder.spec.train import PerformanceSpec
    from kbuilder.train import performance

    def iterations(steps_per_execution: int) -> int:
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
        model.compile(optimizer="sgd", loss="mse", jit_compile=False, steps_per_execution=steps_per_execution)
        data = tf.data.Dataset.from_tensor_slices((np.ones((10, 4)), np.ones((10, 2)))).batch(2).repeat()
        model.fit(data, steps_per_epoch=14, epochs=2, verbose=0)
        return int(model.optimizer.iterations)

    settled = performance.settle_keras_steps(
        _cpu_settings(jit_compile=False, keras_steps_per_execution=4),
        PerformanceSpec(steps_per_execution=4),
        14,
        distributed=False,
        batch_callbacks=False,
    )
    assert settled.keras_steps_per_execution == 2
    assert iterations(4) == 32  # what Keras does with a value that does not divide the epoch
    assert iterations(settled.keras_steps_per_execution) == iterations(1) == 28


@pytest.mark.slow
@pytest.mark.parametrize("spec", ["lenet5_modern", "lenet5", "fashion_cnn", "alexnet"])
def test_model_macs_match_the_build_table(spec):
    from kbuilder.build import build
    from kbuilder.report import make_report
    from kbuilder.train.performance import model_macs

    built = build(load_spec(SPECS / f"{spec}.yaml"))
    assert model_macs(built.model) == make_report(built).macs > 0


def test_onednn_is_preferred_only_when_the_user_did_not_choose(monkeypatch):
    from kbuilder.backend import prefer_onednn

    monkeypatch.delitem(sys.modules, "tensorflow", raising=False)  # as before TensorFlow's import
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    prefer_onednn()
    assert os.environ["TF_ENABLE_ONEDNN_OPTS"] == "1"
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")
    prefer_onednn()
    assert os.environ["TF_ENABLE_ONEDNN_OPTS"] == "0"


def test_torch_threads_sleep_when_idle_unless_the_user_chose(monkeypatch):
    """OMP_WAIT_POLICY=PASSIVE before torch loads (spinning OpenMP threads made Keras-on-torch
    ~40x slower on a loaded 2-core machine); a user's own setting stays."""
    from kbuilder.backend import passive_openmp_threads

    monkeypatch.delitem(sys.modules, "torch", raising=False)
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    passive_openmp_threads()
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    passive_openmp_threads()
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"


def test_eager_torch_says_so_with_the_setting_that_helps():
    from types import SimpleNamespace

    from kbuilder.train.performance import Settings, slow_settings_note

    def settings(backend, jit):
        return Settings(backend, "cpu", False, jit, 1, 1, "numpy", "float32", None)

    auto, on = SimpleNamespace(jit_compile="auto"), SimpleNamespace(jit_compile=True)
    note = slow_settings_note(settings("torch", False), auto)
    assert note and "train.performance.jit_compile=true" in note and "--backend tensorflow" in note
    assert slow_settings_note(settings("torch", True), on) is None
    assert slow_settings_note(settings("tensorflow", True), auto) is None
    assert slow_settings_note(settings("torch", False), SimpleNamespace(jit_compile=False)) is None
