"""A trained model and its input contract, from whatever kbuilder left behind: a run directory
(`best` or `last` model), an ensemble directory (its exported averaging model, or one built
from its members by the function the caller hands in: kbuilder.experiments builds it, above
this package), an export directory (its model.keras), or a tune study folder (its best
trial's run). predict, evaluate, inspect, report and the export of a trained run all load
through here.

    trained = load_trained("runs/lenet5_modern-2026...", which="best")
    x = trained.preprocess(raw)                   # numpy, exactly as training preprocessed
    p = trained.probabilities(trained.model.predict(x))

Every file read here is untrusted: model files pass kbuilder.train.safe_keras before Keras
loads them, an export's model.keras must match its manifest's hash, and every problem is a
UsageError (exit 2) naming the file.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import TypeAdapter, ValidationError

from kbuilder.errors import KBuilderError, UsageError
from kbuilder.export.manifest import MANIFEST_FILE, file_sha256
from kbuilder.spec import LoadedSpec, load_spec
from kbuilder.spec.train import TrainSpec
from kbuilder.spec.train.data import Preprocess
from kbuilder.storage import rundir as rd
from kbuilder.storage.run_reader import read_json
from kbuilder.train.compile import is_crossentropy
from kbuilder.train.preprocess import preprocess_inputs
from kbuilder.train.safe_keras import load_keras_file
from kbuilder.use.older_contract import contract_of_older_run, spec_dir_of
from kbuilder.use.targets import (
    ENSEMBLE_PLAN,
    NotAModel,
    ensemble_members,
    study_best_run,
    target_kind,
)

MODEL_CHOICES = ("best", "last")
_STEPS = TypeAdapter(Preprocess)
# Builds an ensemble's averaged model from its member run directories (kbuilder.experiments
# does it; it sits above this package, so the api hands the function in).
EnsembleBuilder = Callable[[list[Path]], Any]


@dataclass
class TrainedModel:
    """A loaded model, where it came from and how its inputs must be prepared."""

    model: Any  # a keras.Model
    kind: str  # run, ensemble, export or study
    path: Path  # what the user named
    model_file: Path
    contract: dict[str, Any]  # kbuilder.train.contract.input_contract
    run_dir: Path | None = None
    metrics: dict[str, Any] | None = None
    epoch: int | None = None
    steps: list[Any] = field(default_factory=list)  # the contract's steps as spec objects
    members: list[Path] = field(default_factory=list)  # an ensemble's member runs
    overrides: tuple[str, ...] = ()  # `--set` changes to the run's spec (evaluate's other data)

    @property
    def class_names(self) -> list[str] | None:
        return self.contract.get("class_names")

    @property
    def spec_run(self) -> Path | None:
        """The run whose spec (data source, batch size) applies: an ensemble's first member."""
        return self.run_dir or (self.members[0] if self.members else None)

    @cached_property
    def loaded(self) -> LoadedSpec:
        """The resolved spec of the run the model came from, with the overrides."""
        run = self.spec_run
        if run is None or not (run / rd.SPEC_FILE).is_file():
            raise NotAModel(
                f"{self.path}: the run this model was trained in is not at hand (its {rd.SPEC_FILE}); "
                "give the run directory itself"
            )
        loaded = load_spec(run / rd.SPEC_FILE, overrides=self.overrides)
        if loaded.spec.train is None:
            raise NotAModel(f"{run / rd.SPEC_FILE}: the resolved spec has no train section")
        return loaded

    @property
    def train_spec(self) -> TrainSpec:
        train = self.loaded.spec.train
        assert train is not None  # `loaded` refuses a spec without one
        return train

    @property
    def spec_dir(self) -> Path | None:
        run = self.spec_run
        return spec_dir_of(read_json(run / rd.METRICS_FILE, dict)) if run else None

    @property
    def loss_name(self) -> str:
        return str((self.contract.get("output") or {}).get("loss") or "")

    @property
    def classification(self) -> bool:
        return is_crossentropy(self.loss_name)

    @property
    def logits(self) -> bool:
        return bool((self.contract.get("output") or {}).get("logits"))

    @property
    def output_width(self) -> int:
        width = self.model.outputs[0].shape[-1]
        return int(width) if width else 1

    @property
    def labels(self) -> list[str]:
        """A name for every class: the class names, or the class ids when nothing names them."""
        count = 2 if self.loss_name == "binary_crossentropy" else self.output_width
        names = self.class_names
        return list(names) if names and len(names) == count else [str(i) for i in range(count)]

    def accepts(self, x: np.ndarray) -> bool:
        """Whether preprocessed samples `x` have the shape the model takes."""
        expected = tuple(self.model.inputs[0].shape[1:])
        return len(x.shape[1:]) == len(expected) and all(
            e is None or e == d for e, d in zip(expected, x.shape[1:])
        )

    @property
    def raw_input(self) -> dict[str, Any]:
        return self.contract.get("raw_input") or {}

    def preprocess(self, raw: np.ndarray) -> np.ndarray:
        """Raw inputs (as the data source delivers them) as the model was fed in training."""
        statistics = [{"mean": s.mean, "std": s.std} for s in self.steps if s.type == "normalize"]
        x = preprocess_inputs(raw, self.steps, statistics)
        dtype = (self.contract.get("model_input") or {}).get("dtype") or "float32"
        return x.astype(dtype) if np.issubdtype(x.dtype, np.number) else x

    def probabilities(self, outputs: np.ndarray) -> np.ndarray:
        """The model's outputs as probabilities (softmax/sigmoid of logits, as ensembles do)."""
        outputs = np.asarray(outputs, dtype="float64")
        squash = (self.contract.get("output") or {}).get("to_probabilities")
        if squash == "sigmoid":
            return 1.0 / (1.0 + np.exp(-outputs))
        if squash == "softmax":
            exp = np.exp(outputs - outputs.max(axis=-1, keepdims=True))
            return exp / exp.sum(axis=-1, keepdims=True)
        return outputs

    def class_probabilities(self, outputs: np.ndarray) -> np.ndarray:
        """[N, classes] probabilities: one sigmoid unit P(1) becomes [1 - P(1), P(1)]."""
        p = self.probabilities(outputs)
        p = p.reshape(len(p), -1)
        return np.concatenate([1.0 - p, p], axis=-1) if p.shape[-1] == 1 else p

    def describe(self) -> dict[str, Any]:
        """Where the model came from, for a command's JSON document."""
        return {
            "kind": self.kind,
            "path": str(self.path),
            "model_file": str(self.model_file),
            "run_dir": str(self.run_dir) if self.run_dir else None,
            "epoch": self.epoch,
            "test_accuracy": (self.metrics or {}).get("test_accuracy"),
            # A run evaluates its model at the end of training (last.keras) on the test set.
            "test_accuracy_of": (self.metrics or {}).get("test_accuracy_of")
            or ("last.keras" if self.run_dir is not None else None),
        }


def load_trained(
    path: str | Path,
    *,
    which: str = "best",
    overrides: Sequence[str] = (),
    data_dir: str | Path | None = None,
    build_ensemble: EnsembleBuilder | None = None,
) -> TrainedModel:
    """The trained model in `path` (a run, ensemble, export or study directory). `overrides`
    (`--set` style) change the spec `loaded` gives (evaluate's other data); `data_dir` is
    where a run from before kbuilder recorded input contracts finds its training data again;
    `build_ensemble` builds an ensemble's model from its members when it has no export."""
    if which not in MODEL_CHOICES:
        raise UsageError(f"--model must be one of {', '.join(MODEL_CHOICES)}, got '{which}'")
    path = Path(path)
    kind = target_kind(path)
    if kind == "export":
        trained = _from_export(path, path, "export")
    elif kind == "run":
        trained = _from_run(path, path, which, "run", data_dir)
    elif kind == "ensemble":
        trained = _from_ensemble(path, data_dir, build_ensemble)
    else:
        trained = _from_run(study_best_run(path), path, which, "study", data_dir)
    trained.overrides = tuple(overrides)
    return trained


def _from_ensemble(path: Path, data_dir: str | Path | None, build: EnsembleBuilder | None) -> TrainedModel:
    members = ensemble_members(path)
    export = path / rd.EXPORT_DIR
    if (export / MANIFEST_FILE).is_file():
        trained = _from_export(export, path, "ensemble")
    elif build is None:
        raise NotAModel(
            f"{path}: the ensemble has no exported model ({export}); run its `kbuilder ensemble` "
            "command again without --no-export"
        )
    else:  # the members' shared contract; the averaged model outputs probabilities
        first = _from_run(members[0], path, "last", "ensemble", data_dir)
        output = {**first.contract.get("output", {}), "logits": False, "to_probabilities": None}
        contract = {**first.contract, "output": output}
        trained = _made(build(members), "ensemble", path, path / ENSEMBLE_PLAN, contract)
    trained.members = members
    return trained


def _from_run(run_dir: Path, given: Path, which: str, kind: str, data_dir: str | Path | None) -> TrainedModel:
    metrics_file = run_dir / rd.METRICS_FILE
    metrics = read_json(metrics_file, dict) if metrics_file.is_file() else None
    if metrics is None:
        raise NotAModel(
            f"{run_dir}: the run has not finished (no {rd.METRICS_FILE}); "
            f"finish it with `kbuilder train --resume {run_dir}`"
        )
    if which == "best" and not (run_dir / rd.BEST_MODEL).is_file():
        which = "last"  # a run without a checkpoint callback keeps only its final model
    file = run_dir / (rd.BEST_MODEL if which == "best" else rd.LAST_MODEL)
    if not file.is_file():
        hint = "try --model best" if (run_dir / rd.BEST_MODEL).is_file() else "train it again"
        raise NotAModel(f"{run_dir}: the run has no {file.name}; {hint}")
    model = _load_model(file)
    epoch = metrics.get("epochs_run")
    if which == "best":
        best = rd.read_best(rd.RunDir(run_dir))
        epoch = best.get("epoch") if best else None
    data = metrics.get("data") if isinstance(metrics.get("data"), dict) else {}
    contract = data.get("input_contract") or contract_of_older_run(run_dir, metrics, model, data_dir=data_dir)
    return _made(model, kind, given, file, contract, run_dir=run_dir, metrics=metrics, epoch=epoch)


def _from_export(export: Path, given: Path, kind: str) -> TrainedModel:
    manifest_file = export / MANIFEST_FILE
    manifest = read_json(manifest_file, dict)
    file = export / "model.keras"
    digest = (manifest.get("files") or {}).get(file.name) if isinstance(manifest.get("files"), dict) else None
    if not file.is_file() or digest != file_sha256(file):
        raise NotAModel(f"{file}: missing or not the file {manifest_file} lists (its SHA-256 differs)")
    if not manifest.get("trained"):
        raise NotAModel(
            f"{manifest_file}: the export holds untrained weights (`trained: false`: exported from a "
            "spec); export a run instead: `kbuilder export RUN_DIR DIR`"
        )
    contract = manifest.get("input_contract")
    if not isinstance(contract, dict):
        raise NotAModel(
            f"{manifest_file}: no input_contract (an export from before kbuilder recorded it); "
            "export the run again with `kbuilder export RUN_DIR DIR`"
        )
    trained = manifest["trained"] if isinstance(manifest["trained"], dict) else {}
    run = trained.get("run_dir")
    return _made(
        _load_model(file),
        kind,
        given,
        file,
        contract,
        run_dir=Path(run) if isinstance(run, str) else None,
        metrics=trained,
        epoch=trained.get("epoch"),
    )


def _made(model: Any, kind: str, given: Path, file: Path, contract: dict, **extra: Any) -> TrainedModel:
    try:
        steps = [_STEPS.validate_python(step) for step in contract.get("preprocess") or []]
    except ValidationError as exc:
        raise NotAModel(
            f"{file}: its recorded preprocessing is not valid ({exc.errors()[0]['msg']})"
        ) from None
    if any(s.type == "normalize" and (s.mean is None or s.std is None) for s in steps):
        raise NotAModel(f"{file}: its recorded normalize step has no mean and std")
    return TrainedModel(model, kind, given, file, contract, steps=steps, **extra)


def _load_model(file: Path) -> Any:
    try:
        return load_keras_file(file, compile=False)
    except KBuilderError:
        raise
    except Exception as exc:  # noqa: BLE001  (a corrupt or foreign file fails in many ways inside Keras)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise NotAModel(f"cannot load {file}: {type(exc).__name__}: {first}") from None
