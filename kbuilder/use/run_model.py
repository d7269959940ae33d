"""A trained model and the preprocessing it was trained with, from a run, a study or an ensemble.

    run directory   spec.yaml + metrics.json + best.keras / last.keras (`kbuilder train`)
    tune study      summary.json: its best trial's run directory
    ensemble        plan.json: the members' runs; export/model.keras, the averaged model

The preprocessing is the run's resolved `train.data.preprocess` with the normalization
statistics training computed (metrics.json records them); a run without them has them
recomputed from its training split, as training did.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kbuilder.errors import DataError, KBuilderError, RuntimeFailure, UsageError
from kbuilder.spec import LoadedSpec, load_spec
from kbuilder.spec.loader import read_yaml
from kbuilder.spec.train import LossSpec, TrainSpec
from kbuilder.storage import rundir as rd
from kbuilder.storage.run_reader import RunError, read_json, read_run
from kbuilder.train.compile import is_crossentropy, output_is_logits
from kbuilder.train.data import Arrays, Splits, data_directory, load_splits
from kbuilder.train.preprocess import preprocess_splits
from kbuilder.train.safe_keras import load_keras_file
from kbuilder.use.classes import class_names

ENSEMBLE_PLAN = "plan.json"
STUDY_SUMMARY = "summary.json"
ENSEMBLE_MODEL = Path(rd.EXPORT_DIR) / "model.keras"
MODEL_CHOICES = ("best", "last")

# Builds an ensemble's averaged model from its member run directories (kbuilder.experiments
# does it; it sits above this package, so the api hands the function in).
EnsembleBuilder = Callable[[list[Path]], Any]


@dataclass
class TrainedModel:
    """What a run directory (or a study's best trial, or an ensemble) holds, loaded."""

    path: Path  # what the user named
    kind: str  # run, study or ensemble
    run_dir: Path  # the run whose spec and preprocessing apply (an ensemble: its first member)
    loaded: LoadedSpec
    metrics: dict[str, Any]
    model: Any
    model_file: str
    history: list[dict[str, Any]] = field(default_factory=list)
    members: list[Path] = field(default_factory=list)

    @property
    def train_spec(self) -> TrainSpec:
        assert self.loaded.spec.train is not None  # load_trained refuses a spec without one
        return self.loaded.spec.train

    @property
    def loss(self) -> LossSpec:
        loss = self.train_spec.loss
        return loss if isinstance(loss, LossSpec) else LossSpec.model_validate({"name": loss})

    @property
    def spec_dir(self) -> Path | None:
        spec_file = self.metrics.get("spec_file")
        return Path(spec_file).parent if isinstance(spec_file, str) else None

    @property
    def classification(self) -> bool:
        return is_crossentropy(self.loss.name)

    @property
    def logits(self) -> bool:
        if not self.classification or self.kind == "ensemble":  # the averaged model outputs probabilities
            return False
        flag = self.loss.from_logits
        return output_is_logits(self.model) if flag == "auto" else bool(flag)

    @property
    def output_width(self) -> int:
        width = self.model.outputs[0].shape[-1]
        return int(width) if width else 1

    @property
    def class_names(self) -> list[str]:
        count = 2 if self.loss.name == "binary_crossentropy" else self.output_width
        return class_names(self.train_spec.data.source, count, self.spec_dir)


def target_kind(path: Path) -> str:
    """run, study or ensemble; RunError naming the path when it is none of them."""
    if not path.exists():
        raise RunError(f"{path}: no such run directory")
    if not path.is_dir():
        raise RunError(f"{path}: not a directory (expected a run, ensemble or study directory)")
    if (path / rd.SPEC_FILE).is_file():
        return "run"
    if (path / ENSEMBLE_PLAN).is_file():
        return "ensemble"
    if (path / STUDY_SUMMARY).is_file():
        return "study"
    raise RunError(
        f"{path}: not a run directory (no {rd.SPEC_FILE}), nor an ensemble (no {ENSEMBLE_PLAN}) "
        f"nor a tune study (no {STUDY_SUMMARY}); give a directory `kbuilder train`, `ensemble` or `tune` wrote"
    )


def study_best_run(study_dir: Path) -> Path:
    summary = read_json(study_dir / STUDY_SUMMARY, dict)
    best = summary.get("best") or {}
    run_dir = best.get("run_dir") if isinstance(best, dict) else None
    if not isinstance(run_dir, str):
        raise RunError(f"{study_dir / STUDY_SUMMARY}: the study has no finished best trial yet")
    path = Path(run_dir)
    return path if path.is_absolute() else study_dir / path


def ensemble_members(ensemble_dir: Path) -> list[Path]:
    plan = read_json(ensemble_dir / ENSEMBLE_PLAN, dict)
    members = plan.get("members")
    if not isinstance(members, list) or not all(isinstance(m, dict) and "run_dir" in m for m in members):
        raise RunError(f"{ensemble_dir / ENSEMBLE_PLAN}: expected members with their run_dir")
    paths = [Path(str(m["run_dir"])) for m in members]
    return [p if p.is_absolute() else ensemble_dir / p for p in paths]


def load_model_file(file: Path) -> Any:
    """A model file of a run, loaded in Keras's safe mode after kbuilder's own checks."""
    import kbuilder.layers  # noqa: F401  (registers kbuilder's custom layers with Keras's serializer)

    try:
        return load_keras_file(file, compile=False)
    except KBuilderError:
        raise
    except Exception as exc:  # noqa: BLE001  (a corrupt or foreign file fails in many ways inside Keras)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise RuntimeFailure(f"cannot load {file}: {type(exc).__name__}: {first}") from None


def _run_model_file(run_dir: Path, which: str) -> Path:
    if which not in MODEL_CHOICES:
        raise UsageError(f"--model is best or last, got {which!r}")
    best, last = run_dir / rd.BEST_MODEL, run_dir / rd.LAST_MODEL
    if which == "best" and best.is_file():
        return best
    if last.is_file():
        return last  # a run without a checkpoint callback keeps only the final model
    raise RunError(
        f"{run_dir}: the run has no {rd.LAST_MODEL}; finish it with `kbuilder train --resume {run_dir}`"
    )


def load_trained(
    path: str | Path,
    *,
    which: str = "best",
    overrides: Sequence[str] = (),
    build_ensemble: EnsembleBuilder | None = None,
) -> TrainedModel:
    """The model `path` holds and the run whose preprocessing applies to it; `overrides`
    (`--set` style) change the run's resolved spec, e.g. its data source."""
    path = Path(path)
    kind = target_kind(path)
    members: list[Path] = []
    run_dir = path
    if kind == "study":
        run_dir = study_best_run(path)
    elif kind == "ensemble":
        members = ensemble_members(path)
        if not members:
            raise RunError(f"{path / ENSEMBLE_PLAN}: the ensemble has no members")
        run_dir = members[0]
    record = read_run(run_dir, read_yaml, need_metrics=True)
    loaded = load_spec(run_dir / rd.SPEC_FILE, overrides=overrides)
    if loaded.spec.train is None:
        raise RunError(f"{run_dir / rd.SPEC_FILE}: the resolved spec has no train section")
    if kind == "ensemble":
        file = path / ENSEMBLE_MODEL
        if file.is_file():
            model = load_model_file(file)
        elif build_ensemble is not None:
            model, file = build_ensemble(members), path / ENSEMBLE_PLAN
        else:
            raise RunError(f"{path}: the ensemble has no {ENSEMBLE_MODEL} (it was made with --no-export)")
    else:
        file = _run_model_file(run_dir, which)
        model = load_model_file(file)
    metrics = record.metrics or {}
    return TrainedModel(path, kind, run_dir, loaded, metrics, model, str(file), record.history, members)


def _steps_with_statistics(trained: TrainedModel) -> list | None:
    """The preprocessing steps with training's normalization statistics filled in; None
    when a normalize step's statistics were not recorded."""
    steps = list(trained.train_spec.data.preprocess)
    recorded = (trained.metrics.get("data") or {}).get("normalize_statistics") or []
    filled, index = [], 0
    for step in steps:
        if step.type == "normalize" and (step.mean is None or step.std is None):
            if index >= len(recorded):
                return None
            stats = recorded[index]
            step = step.model_copy(update={"mean": stats["mean"], "std": stats["std"]})
        index += step.type == "normalize"
        filled.append(step)
    return filled


def preprocess(trained: TrainedModel, raw: Arrays, *, data_dir: str | Path | None = None) -> Arrays:
    """`raw` (as the data source delivers it) preprocessed exactly as the run's training was."""
    loss = trained.loss.name
    width = trained.output_width
    steps = _steps_with_statistics(trained)
    if steps is not None:
        done, _ = preprocess_splits(
            Splits(raw, None, None, "evaluation"), steps, num_classes=width, loss_name=loss
        )
        arrays = done.train
    else:  # statistics not recorded: recompute them from the training split, as training did
        data = trained.train_spec.data
        splits = load_splits(
            data,
            spec_dir=trained.spec_dir,
            data_dir=data_directory(data_dir),
            input_shape=tuple(trained.model.inputs[0].shape[1:]),
            seed=trained.train_spec.seed,
        )
        done, _ = preprocess_splits(
            Splits(splits.train, None, raw, splits.origin),
            list(data.preprocess),
            num_classes=width,
            loss_name=loss,
        )
        assert done.test is not None
        arrays = done.test
    expected = tuple(trained.model.inputs[0].shape[1:])
    sample = tuple(int(d) for d in arrays.x.shape[1:])
    if len(sample) != len(expected) or any(e is not None and e != s for s, e in zip(sample, expected)):
        raise DataError(
            f"after the run's preprocessing the samples have shape {sample}, but the model expects {expected}"
        )
    dtype = np.dtype(trained.model.inputs[0].dtype)
    y = arrays.y
    if trained.classification and y.ndim == 2 and y.shape[1] > 1:  # one-hot labels back to class ids
        y = np.argmax(y, axis=1)
    return Arrays(arrays.x.astype(dtype, copy=False), y)
