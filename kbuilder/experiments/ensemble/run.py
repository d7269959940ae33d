"""`kbuilder ensemble`: train or collect member runs, combine them, report and export one model.

<ensemble>/plan.json         the members and settings (a rerun with the same --out continues)
<ensemble>/members/<name>/   run directories of the members trained here
<ensemble>/metrics.json      every member's and the ensemble's test accuracy and loss
<ensemble>/export/           the averaging ensemble: SavedModel + model.keras + manifest.json
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kbuilder.backend import select_backend, tensorflow_available
from kbuilder.errors import KBuilderError, RuntimeFailure, UsageError
from kbuilder.experiments.ensemble import combine
from kbuilder.experiments.ensemble.evaluate import evaluate_members
from kbuilder.experiments.ensemble.members import PLAN_FILE, plan_members, record_plan, train_members
from kbuilder.storage import rundir as rd
from kbuilder.storage.atomic import write_json
from kbuilder.storage.run_reader import read_json


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
    metrics, ensemble = evaluate_members(plans, data_dir=options.data_dir, method=options.combine, name=name)
    metrics["export"] = _export(ensemble, directory, metrics) if options.export else "skipped (--no-export)"
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


def _export(model, directory: Path, metrics: dict) -> str:
    if not tensorflow_available():
        return "skipped: a SavedModel needs TensorFlow, which is not installed"
    # kbuilder.export imports Keras, which fixes its backend: only after select_backend ran.
    from kbuilder.export import export_model

    manifest: dict[str, Any] = {
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
    contract = _members_contract(metrics)
    if contract is not None:
        manifest["input_contract"] = contract
        manifest["class_names"] = contract.get("class_names")
    try:
        export_model(model, directory / rd.EXPORT_DIR, manifest=manifest)
    except (KBuilderError, ValueError) as exc:
        return f"failed: {exc}"
    return str(directory / rd.EXPORT_DIR)


def _members_contract(metrics: dict) -> dict | None:
    """The members' shared input contract with the ensemble's output (averaged probabilities),
    or None when the members recorded none or differ in how they take their inputs."""
    contracts = []
    for member in metrics["members"]:
        file = Path(member["run_dir"]) / rd.METRICS_FILE
        data = read_json(file, dict).get("data") if file.is_file() else None
        contracts.append((data or {}).get("input_contract") if isinstance(data, dict) else None)
    first = contracts[0]
    keys = ("raw_input", "preprocess", "source")
    if first is None or any(c is None or any(c.get(k) != first.get(k) for k in keys) for c in contracts):
        return None
    output = {**first.get("output", {}), "logits": False, "to_probabilities": None}
    return {**first, "output": output}
