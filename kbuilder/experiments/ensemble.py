"""`kbuilder ensemble`: train or collect member runs, combine them, report and export one model.

    <ensemble>/plan.json         the members and settings (a rerun with the same --out continues)
    <ensemble>/members/<name>/   run directories of the members trained here
    <ensemble>/metrics.json      every member's and the ensemble's test accuracy and loss
    <ensemble>/export/           the averaging ensemble: SavedModel + model.keras + manifest.json

Every member is evaluated on the same test set, preprocessed as the members' shared `train.data`
says, so the figures in the table are comparable and match what the exported model computes.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kbuilder.backend import select_backend, tensorflow_available
from kbuilder.errors import KBuilderError, RuntimeFailure, UsageError
from kbuilder.experiments import combine
from kbuilder.experiments import ensemble_model as em
from kbuilder.experiments.compare import differing_paths
from kbuilder.experiments.members import PLAN_FILE, MemberPlan, plan_members, record_plan, train_members
from kbuilder.spec import LoadedSpec, load_spec
from kbuilder.spec.loader import read_yaml
from kbuilder.storage import rundir as rd
from kbuilder.storage.atomic import write_json
from kbuilder.storage.run_reader import read_run
from kbuilder.train.data import Arrays, data_directory, load_splits
from kbuilder.train.preprocess import preprocess_splits

EXPORT_CHECK_ATOL = 1e-5


@dataclass
class EnsembleOptions:
    sources: Sequence[str]
    members: int = 1
    bagging: bool = False
    combine: str = "average"
    overrides: Sequence[str] = ()
    data_dir: str | Path | None = None
    out: str | Path | None = None
    backend: str | None = None
    verbose: int | None = None
    export: bool = True
    runs_root: str | Path = "runs"


@dataclass
class EnsembleResult:
    directory: Path
    metrics: dict[str, Any] = field(default_factory=dict)


def ensemble_directory(options: EnsembleOptions, name: str) -> Path:
    """--out (new, empty, or an unfinished ensemble), else runs/<name>-ensemble-<timestamp>.

    Only chosen here; it is created once the members are planned, so a bad request leaves nothing.
    """
    if options.out is None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path, suffix = Path(options.runs_root) / f"{name}-ensemble-{stamp}", 1
        while path.exists():
            suffix += 1
            path = Path(options.runs_root) / f"{name}-ensemble-{stamp}-{suffix}"
        return path
    path = Path(options.out)
    if path.exists() and not path.is_dir():
        raise UsageError(f"--out {path} exists and is not a directory")
    if path.is_dir() and any(path.iterdir()):
        if (path / rd.METRICS_FILE).is_file():
            raise UsageError(
                f"--out {path} holds a finished ensemble (it has {rd.METRICS_FILE}); choose a new directory"
            )
        if not (path / PLAN_FILE).is_file():
            raise UsageError(
                f"--out {path} is not empty and holds no kbuilder ensemble; choose a new or empty directory"
            )
    return path


def run_ensemble(options: EnsembleOptions) -> EnsembleResult:
    combine.check_method(options.combine)
    if not options.sources:
        raise UsageError("give the members: run directories and/or spec files (one spec with --members N)")
    backend = select_backend(options.backend)
    name = _first_name(options.sources)
    directory = ensemble_directory(options, name)
    plans = plan_members(
        options.sources,
        members=options.members,
        bagging=options.bagging,
        overrides=list(options.overrides),
        ensemble_dir=directory,
    )
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RuntimeFailure(f"cannot create the ensemble directory {directory}: {exc}") from None
    record_plan(
        directory, plans, {"combine": options.combine, "bagging": options.bagging, "members": options.members}
    )
    started = time.perf_counter()
    training = train_members(plans, data_dir=options.data_dir, backend=backend, verbose=options.verbose)
    train_seconds = time.perf_counter() - started
    metrics = evaluate_and_export(plans, directory, options, name=name)
    metrics.update({"backend": backend, "training": training, "train_seconds": round(train_seconds, 3)})
    write_json(directory / rd.METRICS_FILE, metrics)
    if str(metrics.get("export", "")).startswith("failed"):
        raise RuntimeFailure(
            f"the ensemble in {directory} is complete except the export: {metrics['export']}"
        )
    return EnsembleResult(directory, metrics)


def _first_name(sources: Sequence[str]) -> str:
    path = Path(sources[0])
    return path.name if path.is_dir() else path.stem


def evaluate_and_export(
    plans: list[MemberPlan], directory: Path, options: EnsembleOptions, *, name: str
) -> dict[str, Any]:
    records = [read_run(p.run_dir, read_yaml, need_metrics=True) for p in plans]
    specs = [load_spec(Path(p.run_dir) / rd.SPEC_FILE) for p in plans]
    loss_spec = _shared_loss(specs, plans)
    _check_same_data(specs, plans)
    models = [em.load_member_model(Path(p.run_dir)) for p in plans]
    width = models[0].outputs[0].shape[-1]
    spec_file = records[0].metrics.get("spec_file")
    test, eval_batch = _test_set(
        specs[0],
        options.data_dir,
        num_classes=int(width) if width else None,
        spec_dir=Path(spec_file).parent if isinstance(spec_file, str) else None,
    )
    logits, probabilities, rows = [], [], []
    for plan, record, loaded, model in zip(plans, records, specs, models):
        if tuple(model.inputs[0].shape[1:]) != tuple(test.x.shape[1:]):
            raise UsageError(
                f"{plan.run_dir}: the model takes inputs shaped {tuple(model.inputs[0].shape[1:])}, "
                f"the test data is shaped {tuple(test.x.shape[1:])}; members must share one input"
            )
        is_logits = em.outputs_logits(model, loss_spec)
        probs = combine.to_probabilities(
            em.predict(model, test.x, eval_batch), loss=loss_spec.name, logits=is_logits
        )
        if probabilities and probs.shape != probabilities[0].shape:
            raise UsageError(
                f"{plan.run_dir}: outputs shaped {probs.shape[1:]}, the first member {probabilities[0].shape[1:]}; "
                "members must predict the same classes"
            )
        logits.append(is_logits)
        probabilities.append(probs)
        rows.append(
            {
                "member": plan.name,
                "run_dir": plan.run_dir,
                "seed": loaded.spec.train.seed,
                "bootstrap": loaded.spec.train.data.bootstrap,
                "outputs": "logits" if is_logits else "probabilities",
                "test_accuracy": combine.accuracy(
                    combine.predicted_classes(probs, loss=loss_spec.name), test.y, loss=loss_spec.name
                ),
                "test_loss": combine.crossentropy(probs, test.y, loss=loss_spec.name),
                "run_test_accuracy": record.metrics.get("test_accuracy"),
                "run_test_loss": record.metrics.get("test_loss"),
            }
        )
    averaged = combine.average(probabilities)
    winners, shares = combine.vote(probabilities, loss=loss_spec.name)
    combined = {
        "average": {
            "test_accuracy": combine.accuracy(
                combine.predicted_classes(averaged, loss=loss_spec.name), test.y, loss=loss_spec.name
            ),
            "test_loss": combine.crossentropy(averaged, test.y, loss=loss_spec.name),
        },
        "vote": {
            "test_accuracy": combine.accuracy(winners, test.y, loss=loss_spec.name),
            "test_loss": combine.crossentropy(
                combine.vote_probabilities(shares, loss=loss_spec.name), test.y, loss=loss_spec.name
            ),
        },
    }
    member_accuracies = [r["test_accuracy"] for r in rows]
    metrics: dict[str, Any] = {
        "ensemble": name,
        "combine": options.combine,
        "loss": loss_spec.name,
        "members": rows,
        "test_samples": len(test),
        "test_accuracy": combined[options.combine]["test_accuracy"],
        "test_loss": combined[options.combine]["test_loss"],
        "combinations": combined,
        "normalize_statistics_differ": len(
            {repr((r.metrics.get("data") or {}).get("normalize_statistics")) for r in records}
        )
        > 1,
        "best_member_test_accuracy": max(member_accuracies),
        "mean_member_test_accuracy": sum(member_accuracies) / len(member_accuracies),
    }
    ensemble = em.build_ensemble_model(
        models, logits, loss_name=loss_spec.name, input_name=next(iter(specs[0].spec.inputs)), name=name
    )
    difference = float(abs(em.predict(ensemble, test.x, eval_batch) - averaged).max())
    metrics["model_check"] = {"max_abs_diff_vs_average": difference, "atol": EXPORT_CHECK_ATOL}
    if not difference <= EXPORT_CHECK_ATOL:
        raise RuntimeFailure(
            f"the combined Keras model differs from the averaged member probabilities by {difference:.3g} "
            f"on the test set (allowed {EXPORT_CHECK_ATOL:g})"
        )
    metrics["export"] = _export(ensemble, directory, metrics) if options.export else "skipped (--no-export)"
    return metrics


def _shared_loss(specs, plans):
    losses = {s.spec.train.loss.name for s in specs}
    if len(losses) > 1:
        raise UsageError(
            f"members train with different losses ({', '.join(sorted(losses))}); an ensemble averages one kind of output"
        )
    loss = specs[0].spec.train.loss
    if loss.name not in combine.LOSSES:
        raise UsageError(
            f"{plans[0].run_dir}: loss '{loss.name}'; ensembles combine class probabilities, "
            f"so members must train with {', '.join(combine.LOSSES)}"
        )
    return loss


def _check_same_data(specs, plans) -> None:
    """Members must see the same inputs: the same data and preprocessing (bagging resamples may differ)."""

    def comparable(loaded) -> dict:
        data = loaded.spec.train.data.model_dump(
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
    loaded: LoadedSpec, data_dir, *, num_classes: int | None, spec_dir: Path | None
) -> tuple[Arrays, int]:
    """The test split, preprocessed as the first member's training was (its resample left out).

    Steps with fixed values (rescale, pad, ...) give every member exactly its own inputs; a
    `normalize` without mean/std uses the first member's training statistics for all.
    """
    train_spec = loaded.spec.train
    data = train_spec.data.model_copy(update={"bootstrap": None})
    input_shape = tuple(next(iter(loaded.spec.inputs.values())).shape)
    splits = load_splits(
        data,
        spec_dir=spec_dir,
        data_dir=data_directory(data_dir),
        input_shape=input_shape,
        seed=train_spec.seed,
    )
    if splits.test is None:
        raise UsageError(
            f"the members' data ({splits.origin}) has no test set to evaluate the ensemble on; "
            "give the data source test arrays and keep train.data.evaluate_test true"
        )
    if train_spec.loss.name == "binary_crossentropy":
        num_classes = None
    splits, _ = preprocess_splits(
        splits, data.preprocess, num_classes=num_classes, loss_name=train_spec.loss.name
    )
    dtype = next(iter(loaded.spec.inputs.values())).dtype
    splits.test.x = splits.test.x.astype(np.dtype(dtype))
    return splits.test, train_spec.performance.eval_batch_size


def _export(model, directory: Path, metrics: dict) -> str:
    if not tensorflow_available():
        return "skipped: a SavedModel needs TensorFlow, which is not installed"
    # kbuilder.export imports Keras, which fixes its backend: only after select_backend ran.
    from kbuilder.export import export_model

    manifest = {
        "model": f"{metrics['ensemble']}_ensemble",
        "combine": "average",
        "members": [
            {"member": r["member"], "run_dir": r["run_dir"], "outputs": r["outputs"]}
            for r in metrics["members"]
        ],
        "trained": {
            "test_accuracy": metrics["combinations"]["average"]["test_accuracy"],
            "test_loss": metrics["combinations"]["average"]["test_loss"],
        },
    }
    try:
        export_model(model, directory / rd.EXPORT_DIR, manifest=manifest)
    except (KBuilderError, ValueError) as exc:
        return f"failed: {exc}"
    return str(directory / rd.EXPORT_DIR)
