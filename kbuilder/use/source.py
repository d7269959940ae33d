"""A trained model and its input contract, from whatever kbuilder left behind: a run directory
(`best` or `last` model), an ensemble directory (its exported averaging model), an export
directory (its model.keras), or a tune study folder (its best trial's run).

    trained = load_trained("runs/lenet5_modern-2026...", which="best")
    x = trained.preprocess(raw)                   # numpy, exactly as training preprocessed
    p = trained.probabilities(trained.model.predict(x))

Every file read here is untrusted: model files pass kbuilder.train.safe_keras before Keras
loads them, an export's model.keras must match its manifest's hash, and every problem is a
UsageError (exit 2) naming the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import TypeAdapter, ValidationError

from kbuilder.errors import KBuilderError, UsageError
from kbuilder.export.manifest import MANIFEST_FILE, file_sha256
from kbuilder.spec.loader import read_yaml
from kbuilder.spec.train.data import Preprocess
from kbuilder.storage import rundir as rd
from kbuilder.storage.run_reader import read_json
from kbuilder.train.classes import keras_dataset_classes
from kbuilder.train.compile import is_crossentropy, output_is_logits
from kbuilder.train.contract import output_kind
from kbuilder.train.preprocess import preprocess_inputs
from kbuilder.train.safe_keras import load_keras_file

MODEL_CHOICES = ("best", "last")
SUMMARY_FILE = "summary.json"  # a tune study's report (kbuilder.experiments.tune.report)
ENSEMBLE_PLAN = "plan.json"  # an ensemble directory's plan (kbuilder.experiments.ensemble)
# What Keras's data sets deliver, for runs trained before runs recorded their input contract.
KERAS_RAW = {
    "mnist": [28, 28],
    "fashion_mnist": [28, 28],
    "cifar10": [32, 32, 3],
    "cifar100": [32, 32, 3],
}
_STEPS = TypeAdapter(Preprocess)


class NotAModel(UsageError):
    title = "not a trained model"


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

    @property
    def class_names(self) -> list[str] | None:
        return self.contract.get("class_names")

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


def load_trained(path: str | Path, *, which: str = "best") -> TrainedModel:
    """The trained model in `path` (a run, ensemble, export or study directory)."""
    if which not in MODEL_CHOICES:
        raise UsageError(f"--model must be one of {', '.join(MODEL_CHOICES)}, got '{which}'")
    path = Path(path)
    if not path.is_dir():
        raise NotAModel(f"{path}: no such directory (give a run, ensemble, export or tune study directory)")
    if (path / MANIFEST_FILE).is_file():
        return _from_export(path, path, "export")
    if (path / rd.SPEC_FILE).is_file():
        return _from_run(path, path, which, "run")
    if (path / ENSEMBLE_PLAN).is_file():
        export = path / rd.EXPORT_DIR
        if not (export / MANIFEST_FILE).is_file():
            raise NotAModel(
                f"{path}: the ensemble has no exported model ({export}); run its `kbuilder ensemble` "
                "command again without --no-export"
            )
        return _from_export(export, path, "ensemble")
    if (path / SUMMARY_FILE).is_file():
        return _from_study(path, which)
    raise NotAModel(
        f"{path}: not a run directory ({rd.SPEC_FILE}), an export ({MANIFEST_FILE}), an ensemble "
        f"({ENSEMBLE_PLAN}) or a tune study ({SUMMARY_FILE})"
    )


def _from_study(path: Path, which: str) -> TrainedModel:
    summary = read_json(path / SUMMARY_FILE, dict)
    best = summary.get("best") if isinstance(summary.get("best"), dict) else None
    run = best.get("run_dir") if best else None
    if not isinstance(run, str):
        raise NotAModel(f"{path / SUMMARY_FILE}: the study has no completed best trial with a run directory")
    run_dir = Path(run) if Path(run).is_absolute() or Path(run).is_dir() else path / run
    if not (run_dir / rd.SPEC_FILE).is_file():
        raise NotAModel(f"{path / SUMMARY_FILE}: its best trial's run directory {run_dir} is missing")
    return _from_run(run_dir, path, which, "study")


def _from_run(run_dir: Path, given: Path, which: str, kind: str) -> TrainedModel:
    metrics_file = run_dir / rd.METRICS_FILE
    metrics = read_json(metrics_file, dict) if metrics_file.is_file() else None
    if metrics is None:
        raise NotAModel(
            f"{run_dir}: the run has not finished (no {rd.METRICS_FILE}); "
            f"finish it with `kbuilder train --resume {run_dir}`"
        )
    file = run_dir / (rd.BEST_MODEL if which == "best" else rd.LAST_MODEL)
    if not file.is_file():
        other = "last" if which == "best" else "best"
        raise NotAModel(f"{run_dir}: the run has no {file.name}; try --model {other}")
    model = _load_model(file)
    epoch = metrics.get("epochs_run")
    if which == "best":
        best = rd.read_best(rd.RunDir(run_dir))
        epoch = best.get("epoch") if best else None
    data = metrics.get("data") if isinstance(metrics.get("data"), dict) else {}
    contract = data.get("input_contract") or _contract_of_older_run(run_dir, metrics, model)
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


def _contract_of_older_run(run_dir: Path, metrics: dict, model: Any) -> dict[str, Any]:
    """The contract of a run from before runs recorded one: Keras data sets only (their raw
    inputs are known), with the normalize statistics metrics.json kept."""
    spec = _resolved_spec(run_dir)
    data = (spec.get("train") or {}).get("data") or {}
    source = data.get("source") or {}
    if source.get("type") != "keras" or source.get("name") not in KERAS_RAW:
        raise NotAModel(
            f"{run_dir}: the run records no input contract (trained before kbuilder recorded one) and "
            "its data source is not a Keras data set; train it again"
        )
    statistics: Any = iter(((metrics.get("data") or {}).get("normalize_statistics")) or [])
    steps = []
    for step in data.get("preprocess") or []:
        if step.get("type") == "one_hot":
            continue
        if step.get("type") == "normalize":
            recorded = next(statistics, None) or {}
            step = {**step, **recorded}
        steps.append(step)
    loss = (spec.get("train") or {}).get("loss") or {}
    loss_name = loss if isinstance(loss, str) else loss.get("name", "")
    from_logits = "auto" if isinstance(loss, str) else loss.get("from_logits", "auto")
    logits = is_crossentropy(loss_name) and (
        output_is_logits(model) if from_logits == "auto" else bool(from_logits)
    )
    names = data.get("classes") or keras_dataset_classes(source["name"], source.get("label_mode", "fine"))
    return {
        "raw_input": {"dtype": "uint8", "shape": KERAS_RAW[source["name"]], "range": [0.0, 255.0]},
        "source": f"keras:{source['name']}",
        "preprocess": steps,
        "model_input": {"shape": list(model.inputs[0].shape[1:]), "dtype": "float32"},
        "output": {"shape": list(model.outputs[0].shape[1:]), **output_kind(loss_name, logits)},
        "class_names": names,
    }


def _resolved_spec(run_dir: Path) -> dict[str, Any]:
    spec, _ = read_yaml(run_dir / rd.SPEC_FILE)
    if not isinstance(spec, dict):
        raise NotAModel(f"{run_dir / rd.SPEC_FILE}:1:1: expected the resolved spec (a mapping)")
    return spec
