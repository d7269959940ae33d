"""Phased runs end to end on a tiny MNIST spec: what each phase trains, batch normalization
frozen in inference mode, the history and curves, and a run cut in phase 2 resumed."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from kbuilder.errors import Interrupted
from kbuilder.spec import load_spec
from tests.test_train_support import DATASETS, TRAIN_SECTION, current_backend, write_spec

pytestmark = pytest.mark.slow

MODEL = """
name: tiny_bn
inputs:
  image: {shape: [28, 28]}
layers:
  - flatten: {name: flatten}
  - dense: {name: hidden, units: 32, activation: relu}
  - batch_norm: {name: bn}
  - dense: {name: logits, units: 10}
"""
PHASES = """
  freeze: [FROZEN]
  phases:
    - {name: head, epochs: 2}
    - {name: all, epochs: 2, unfreeze: all, learning_rate: 0.001}
"""


def _spec(directory, frozen: str = "hidden, bn"):
    train = TRAIN_SECTION.replace("  epochs: 3\n", "") + PHASES.replace("FROZEN", frozen)
    return write_spec(directory, train=train, model=MODEL)


def _options(out, **kwargs):
    from kbuilder.train import TrainOptions

    return TrainOptions(
        data_dir=DATASETS, out=out, backend=current_backend(), verbose=0, export=False, **kwargs
    )


def _watch(names: list[str]):
    """A callback keeping, after each epoch, the values of the named weights (`layer/weight`)."""
    import keras

    class Watch(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seen: list[dict[str, np.ndarray]] = []

        def on_train_begin(self, logs=None):
            if not self.seen:
                self.seen.append(self._values())

        def on_epoch_end(self, epoch, logs=None):
            self.seen.append(self._values())

        def _values(self):
            values = {}
            for name in names:
                layer, weight = name.split("/")
                variable = next(w for w in self.model.get_layer(layer).weights if w.name == weight)
                values[name] = keras.ops.convert_to_numpy(variable).copy()
            return values

    return Watch()


def _changed(seen: list[dict], name: str) -> list[bool]:
    """Per epoch: whether the weight moved during it."""
    return [not np.array_equal(a[name], b[name]) for a, b in itertools.pairwise(seen)]


@pytest.fixture(scope="module")
def phased(tmp_path_factory):
    from kbuilder.train import train

    out = tmp_path_factory.mktemp("phased") / "run"
    watch = _watch(["hidden/kernel", "bn/moving_mean", "bn/gamma", "logits/kernel"])
    result = train(load_spec(_spec(out.parent)), _options(out, extra_callbacks=[watch]))
    return result, watch.seen, out


def test_phase_one_trains_only_the_unfrozen_layers(phased):
    _, seen, _ = phased
    assert _changed(seen, "hidden/kernel") == [False, False, True, True]
    assert _changed(seen, "bn/gamma") == [False, False, True, True]
    assert _changed(seen, "logits/kernel") == [True, True, True, True]


def test_a_frozen_batch_norm_runs_in_inference_mode(phased):
    # Its moving statistics stay while it is frozen, and move once it is unfrozen.
    _, seen, _ = phased
    assert _changed(seen, "bn/moving_mean") == [False, False, True, True]


def test_an_unfrozen_batch_norm_updates_its_statistics_in_phase_one(tmp_path):
    from kbuilder.train import train

    watch = _watch(["bn/moving_mean", "hidden/kernel"])
    train(load_spec(_spec(tmp_path, frozen="hidden")), _options(tmp_path / "run", extra_callbacks=[watch]))
    assert _changed(watch.seen, "hidden/kernel")[:2] == [False, False]
    assert _changed(watch.seen, "bn/moving_mean")[:2] == [True, True]


def test_each_phase_is_in_the_history_metrics_and_curves(phased):
    result, _, out = phased
    assert [(r["epoch"], r["phase"]) for r in result.history] == [
        (1, "head"),
        (2, "head"),
        (3, "all"),
        (4, "all"),
    ]
    assert [r["learning_rate"] for r in result.history] == pytest.approx([0.01, 0.01, 0.001, 0.001])
    head, everything = json.loads((out / "metrics.json").read_text())["phases"]
    assert (head["name"], head["epochs"], head["frozen"]) == ("head", [1, 2], ["bn", "hidden"])
    assert head["trainable_params"] == 32 * 10 + 10
    assert (everything["epochs"], everything["frozen"], everything["learning_rate"]) == ([3, 4], [], 0.001)
    assert everything["trainable_params"] == 784 * 32 + 32 + 2 * 32 + 32 * 10 + 10
    assert "phase" in (out / "history.csv").read_text().splitlines()[0].split(",")
    assert (out / "curves.png").stat().st_size > 0
    assert "train_phase" not in result.metrics


def _interrupt_after(epochs_done: int):
    import keras

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch + 1 == epochs_done:
                raise KeyboardInterrupt  # what Ctrl-C does in the middle of a run

    return Interrupt()


@pytest.mark.parametrize("stop_after", [2, 3], ids=["at-the-phase-boundary", "inside-phase-2"])
def test_a_run_cut_in_phase_two_resumes_there(phased, stop_after, tmp_path):
    from kbuilder.train import train

    straight, _, _ = phased
    out = tmp_path / "run"
    spec = _spec(tmp_path)
    with pytest.raises(Interrupted, match=f"epoch {stop_after} of 4 saved"):
        train(load_spec(spec), _options(out, extra_callbacks=[_interrupt_after(stop_after)]))
    resumed = train(load_spec(out / "spec.yaml"), _options(out))
    assert resumed.metrics["resumed_after_epoch"] == stop_after
    assert [(r["epoch"], r["phase"]) for r in resumed.history] == [
        (1, "head"),
        (2, "head"),
        (3, "all"),
        (4, "all"),
    ]
    # Weights, the phase's optimizer state and the data order carried over: the same figures.
    for before, after in zip(straight.history, resumed.history):
        assert after["loss"] == pytest.approx(before["loss"], rel=1e-4), (straight.history, resumed.history)
    assert resumed.metrics["test_loss"] == pytest.approx(straight.metrics["test_loss"], rel=1e-4)


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ("  freeze: ['*']\n  epochs: 1\n", "train.freeze"),
        ("  phases:\n    - {epochs: 1}\n    - {name: none, epochs: 1, freeze: ['*']}\n", "phase 'none'"),
    ],
)
def test_a_run_that_would_train_nothing_is_refused(fields, where, tmp_path):
    from kbuilder.errors import UsageError
    from kbuilder.train import train

    spec = write_spec(tmp_path, train=TRAIN_SECTION.replace("  epochs: 3\n", "") + fields, model=MODEL)
    with pytest.raises(UsageError, match=f"{where} leaves no trainable weight"):
        train(load_spec(spec), _options(tmp_path / "run"))
