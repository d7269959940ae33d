"""What a directory kbuilder wrote holds: a run (spec.yaml), an export (manifest.json), an
ensemble (plan.json: its members' runs) or a tune study (summary.json: its best trial's run).
Anything else is NotAModel (exit 2), naming the directory and what was looked for.
"""

from __future__ import annotations

from pathlib import Path

from kbuilder.errors import UsageError
from kbuilder.export.manifest import MANIFEST_FILE
from kbuilder.storage import rundir as rd
from kbuilder.storage.run_reader import read_json

SUMMARY_FILE = "summary.json"  # a tune study's report (kbuilder.experiments.tune.report)
ENSEMBLE_PLAN = "plan.json"  # an ensemble directory's plan (kbuilder.experiments.ensemble)


class NotAModel(UsageError):
    title = "not a trained model"


def target_kind(path: Path) -> str:
    """run, export, ensemble or study: what kbuilder wrote into `path`; NotAModel otherwise."""
    if not path.is_dir():
        raise NotAModel(f"{path}: no such directory (give a run, ensemble, export or tune study directory)")
    for marker, kind in (
        (MANIFEST_FILE, "export"),
        (rd.SPEC_FILE, "run"),
        (ENSEMBLE_PLAN, "ensemble"),
        (SUMMARY_FILE, "study"),
    ):
        if (path / marker).is_file():
            return kind
    raise NotAModel(
        f"{path}: not a run directory ({rd.SPEC_FILE}), an export ({MANIFEST_FILE}), an ensemble "
        f"({ENSEMBLE_PLAN}) or a tune study ({SUMMARY_FILE})"
    )


def recorded_dir(base: Path, recorded: str) -> Path:
    """A directory a plan or a summary recorded: absolute, beside `base`, or from here."""
    path = Path(recorded)
    return path if path.is_absolute() or not (base / path).is_dir() else base / path


def study_best_run(path: Path) -> Path:
    summary = read_json(path / SUMMARY_FILE, dict)
    best = summary.get("best") if isinstance(summary.get("best"), dict) else None
    run = best.get("run_dir") if best else None
    if not isinstance(run, str):
        raise NotAModel(f"{path / SUMMARY_FILE}: the study has no completed best trial with a run directory")
    run_dir = recorded_dir(path, run)
    if not (run_dir / rd.SPEC_FILE).is_file():
        raise NotAModel(f"{path / SUMMARY_FILE}: its best trial's run directory {run_dir} is missing")
    return run_dir


def ensemble_members(path: Path) -> list[Path]:
    members = read_json(path / ENSEMBLE_PLAN, dict).get("members")
    if (
        not members
        or not isinstance(members, list)
        or not all(isinstance(m, dict) and "run_dir" in m for m in members)
    ):
        raise NotAModel(f"{path / ENSEMBLE_PLAN}: expected the ensemble's members with their run_dir")
    return [recorded_dir(path, str(m["run_dir"])) for m in members]
