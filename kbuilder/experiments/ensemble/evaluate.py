"""Evaluating an ensemble: every member and the combinations on one test set.

Every member is evaluated on the same test set, preprocessed as the members' shared `train.data`
says, so the figures in the table are comparable and match what the exported model computes.
Members must share their inputs, data and preprocessing, and one kind of loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np

from kbuilder.errors import RuntimeFailure, UsageError
from kbuilder.experiments.compare import differing_paths
from kbuilder.experiments.ensemble import combine
from kbuilder.experiments.ensemble import model as em
from kbuilder.experiments.ensemble.members import MemberPlan
from kbuilder.spec import LoadedSpec, load_spec
from kbuilder.spec.loader import read_yaml
from kbuilder.spec.train import LossSpec, TrainSpec
from kbuilder.storage import rundir as rd
from kbuilder.storage.run_reader import read_run
from kbuilder.train.compile import outputs_logits
from kbuilder.train.data import Arrays, data_directory, load_splits
from kbuilder.train.preprocess import preprocess_splits

EXPORT_CHECK_ATOL = 1e-5


@dataclass
class TestSet:
    """The shared test split, the batch size to predict it in and the members' loss."""

    data: Arrays
    batch: int
    loss: LossSpec

    def probabilities(self, model: Any) -> tuple[np.ndarray, bool]:
        """A model's class probabilities on the test set, and whether it outputs logits."""
        is_logits = outputs_logits(model, self.loss)
        outputs = em.predict(model, self.data.x, self.batch)
        return combine.to_probabilities(outputs, loss=self.loss.name, logits=is_logits), is_logits

    def figures(self, probabilities: np.ndarray, classes: np.ndarray | None = None) -> dict[str, float]:
        """Test accuracy of the predicted classes (by default the most probable) and cross-entropy."""
        if classes is None:
            classes = combine.predicted_classes(probabilities, loss=self.loss.name)
        return {
            "test_accuracy": combine.accuracy(classes, self.data.y, loss=self.loss.name),
            "test_loss": combine.crossentropy(probabilities, self.data.y, loss=self.loss.name),
        }


def evaluate_members(
    plans: list[MemberPlan], *, data_dir: str | Path | None, method: str, name: str
) -> tuple[dict[str, Any], Any]:
    """The members' and the ensemble's test figures, and the ensemble as one Keras model
    (checked against the averaged probabilities it must reproduce)."""
    records = [read_run(p.run_dir, read_yaml, need_metrics=True) for p in plans]
    finished = [record.metrics or {} for record in records]  # need_metrics: never None
    specs = [load_spec(Path(p.run_dir) / rd.SPEC_FILE) for p in plans]
    loss_spec = _shared_loss(specs, plans)
    _check_same_data(specs, plans)
    models = [em.load_member_model(Path(p.run_dir)) for p in plans]
    width = models[0].outputs[0].shape[-1]
    spec_file = finished[0].get("spec_file")
    data, batch = _test_set(
        specs[0],
        data_dir,
        num_classes=int(width) if width else None,
        spec_dir=Path(spec_file).parent if isinstance(spec_file, str) else None,
    )
    test = TestSet(data, batch, loss_spec)
    logits: list[bool] = []
    probabilities: list[np.ndarray] = []
    rows: list[dict[str, Any]] = []
    for plan, run_metrics, loaded, model in zip(plans, finished, specs, models):
        if tuple(model.inputs[0].shape[1:]) != tuple(data.x.shape[1:]):
            raise UsageError(
                f"{plan.run_dir}: the model takes inputs shaped {tuple(model.inputs[0].shape[1:])}, "
                f"the test data is shaped {tuple(data.x.shape[1:])}; members must share one input"
            )
        probs, is_logits = test.probabilities(model)
        if probabilities and probs.shape != probabilities[0].shape:
            raise UsageError(
                f"{plan.run_dir}: outputs shaped {probs.shape[1:]}, the first member {probabilities[0].shape[1:]}; "
                "members must predict the same classes"
            )
        logits.append(is_logits)
        probabilities.append(probs)
        train = _train_of(loaded)
        rows.append(
            {
                "member": plan.name,
                "run_dir": plan.run_dir,
                "seed": train.seed,
                "bootstrap": train.data.bootstrap,
                "outputs": "logits" if is_logits else "probabilities",
                **test.figures(probs),
                "run_test_accuracy": run_metrics.get("test_accuracy"),
                "run_test_loss": run_metrics.get("test_loss"),
            }
        )
    averaged = combine.average(probabilities)
    winners, shares = combine.vote(probabilities, loss=loss_spec.name)
    combined = {
        "average": test.figures(averaged),
        "vote": test.figures(combine.vote_probabilities(shares, loss=loss_spec.name), winners),
    }
    member_accuracies: list[float] = [r["test_accuracy"] for r in rows]
    metrics: dict[str, Any] = {
        "ensemble": name,
        "combine": method,
        "loss": loss_spec.name,
        "members": rows,
        "test_samples": len(data),
        "test_accuracy": combined[method]["test_accuracy"],
        "test_loss": combined[method]["test_loss"],
        "combinations": combined,
        "normalize_statistics_differ": len(
            {repr((m.get("data") or {}).get("normalize_statistics")) for m in finished}
        )
        > 1,
        "best_member_test_accuracy": max(member_accuracies),
        "mean_member_test_accuracy": sum(member_accuracies) / len(member_accuracies),
    }
    input_name = next(iter(specs[0].spec.inputs))
    ensemble = em.build_ensemble_model(
        models, logits, loss_name=loss_spec.name, input_name=input_name, name=name
    )
    metrics["model_check"] = _check_model(ensemble, test, averaged)
    return metrics, ensemble


def _check_model(ensemble: Any, test: TestSet, averaged: np.ndarray) -> dict[str, float]:
    """The one Keras model must compute what the members' averaged probabilities are."""
    difference = float(abs(em.predict(ensemble, test.data.x, test.batch) - averaged).max())
    if not difference <= EXPORT_CHECK_ATOL:
        raise RuntimeFailure(
            f"the combined Keras model differs from the averaged member probabilities by {difference:.3g} "
            f"on the test set (allowed {EXPORT_CHECK_ATOL:g})"
        )
    return {"max_abs_diff_vs_average": difference, "atol": EXPORT_CHECK_ATOL}


def _train_of(loaded: LoadedSpec) -> TrainSpec:
    """A member's train section (a run's resolved spec always has one)."""
    if loaded.spec.train is None:
        raise UsageError(f"{loaded.path}: the spec has no train section, so it is no trained member")
    return loaded.spec.train


def _loss_of(train: TrainSpec) -> LossSpec:
    """The loss as {name, from_logits, ...} (validation turns a bare name into this form)."""
    return train.loss if isinstance(train.loss, LossSpec) else LossSpec.model_validate({"name": train.loss})


def _shared_loss(specs: list[LoadedSpec], plans: list[MemberPlan]) -> LossSpec:
    losses = {_loss_of(_train_of(s)).name for s in specs}
    if len(losses) > 1:
        raise UsageError(
            f"members train with different losses ({', '.join(sorted(losses))}); an ensemble averages one kind of output"
        )
    loss = _loss_of(_train_of(specs[0]))
    if loss.name not in combine.LOSSES:
        raise UsageError(
            f"{plans[0].run_dir}: loss '{loss.name}'; ensembles combine class probabilities, "
            f"so members must train with {', '.join(combine.LOSSES)}"
        )
    return loss


def _check_same_data(specs: list[LoadedSpec], plans: list[MemberPlan]) -> None:
    """Members must see the same inputs: the same data and preprocessing (bagging resamples may differ)."""

    def comparable(loaded: LoadedSpec) -> dict:
        data = _train_of(loaded).data.model_dump(
            mode="json", exclude={"bootstrap", "limit", "shuffle", "repeat", "augment"}
        )
        return {"inputs": loaded.spec.model_dump(mode="json")["inputs"], "data": data}

    reference = comparable(specs[0])
    for plan, loaded in zip(plans[1:], specs[1:]):
        other = comparable(loaded)
        if other != reference:
            paths = differing_paths([reference, other])
            raise UsageError(
                f"{plan.run_dir}: trained on other inputs than {plans[0].run_dir} "
                f"(differs at {', '.join(paths[:3])}); members must share inputs, data and preprocessing"
            )


def _test_set(
    loaded: LoadedSpec, data_dir: str | Path | None, *, num_classes: int | None, spec_dir: Path | None
) -> tuple[Arrays, int]:
    """The test split, preprocessed as the first member's training was (its resample left out).

    Steps with fixed values (rescale, pad, ...) give every member exactly its own inputs; a
    `normalize` without mean/std uses the first member's training statistics for all.
    """
    train_spec = _train_of(loaded)
    loss_name = _loss_of(train_spec).name
    data = train_spec.data.model_copy(update={"bootstrap": None})
    input_shape = tuple(next(iter(loaded.spec.inputs.values())).shape)
    splits = load_splits(
        data,
        spec_dir=spec_dir,
        data_dir=data_directory(data_dir),
        input_shape=input_shape,
        seed=train_spec.seed,
    )
    test = splits.test
    if test is None:
        raise UsageError(
            f"the members' data ({splits.origin}) has no test set to evaluate the ensemble on; "
            "give the data source test arrays and keep train.data.evaluate_test true"
        )
    if loss_name == "binary_crossentropy":
        num_classes = None
    splits, _ = preprocess_splits(splits, data.preprocess, num_classes=num_classes, loss_name=loss_name)
    test = cast(Arrays, splits.test)  # preprocessing returns every split it was given
    dtype = next(iter(loaded.spec.inputs.values())).dtype
    test.x = test.x.astype(np.dtype(dtype))
    return test, train_spec.performance.eval_batch_size
