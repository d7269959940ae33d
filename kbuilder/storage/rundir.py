"""The run directory's format and its writer: what a training run leaves behind, and how an
interrupted run is found (its reader for experiments is run_reader.py).

    <run>/.kbuilder-run.json  marks the folder as a kbuilder run, with the resolved spec it trains
    <run>/.kbuilder-lock      flock'ed while a process writes the run, removed after (lock.py)
    <run>/spec.yaml        the fully resolved spec (defaults filled, overrides applied)
    <run>/history.csv      per-epoch figures (epochs from 1, as everywhere)
    <run>/history.json     the same, with epoch seconds and learning rate
    <run>/metrics.json     final figures, timings, settings, backend and device
    <run>/best.keras       the best model by the checkpoint's monitor
    <run>/best.json        the monitored figure and epoch of best.keras (kept across resumes)
    <run>/last.keras       the model after the last epoch
    <run>/export/          SavedModel + model.keras + manifest.json (kbuilder.export)
    <run>/logs/            TensorBoard logs
    <run>/curves.png       loss and accuracy per epoch, train vs validation
    <run>/backup/          training state while a run is unfinished (removed when it ends)

Every file is written atomically (atomic.py). A folder is only ever treated as a run when
it carries the marker: a user's folder that happens to hold `backup/` or `spec.yaml` is
refused, never resumed into or overwritten. A model file of an interrupted run is untrusted
input: the trainer hands open_run_dir its checker (kbuilder.train.safe_keras sits above storage).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kbuilder.errors import RuntimeFailure, UsageError
from kbuilder.storage import atomic
from kbuilder.storage.atomic import write_json
from kbuilder.storage.lock import LOCK_FILE, RunLock

MARKER_FILE = ".kbuilder-run.json"
SPEC_FILE = "spec.yaml"
METRICS_FILE = "metrics.json"
HISTORY_JSON = "history.json"
HISTORY_CSV = "history.csv"
BEST_MODEL = "best.keras"
BEST_STATE = "best.json"
LAST_MODEL = "last.keras"
EXPORT_DIR = "export"
LOG_DIR = "logs"
CURVES = "curves.png"
BACKUP_DIR = "backup"
BACKUP_STATE = "training_metadata.json"
# Settings a resumed run may change: more epochs extend a run without making it another run.
RESUMABLE_CHANGES = (("train", "epochs"),)


@dataclass
class RunDir:
    path: Path
    lock: RunLock | None = field(default=None, compare=False)

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    @property
    def backup(self) -> Path:
        return self.path / BACKUP_DIR

    def resume_epoch(self) -> int | None:
        """The epoch an unfinished run stopped after (None when there is nothing to resume)."""
        meta = self.backup / BACKUP_STATE
        if not meta.is_file():
            return None
        try:
            epoch = json.loads(meta.read_text())["epoch"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return epoch if isinstance(epoch, int) and epoch > 0 else None

    def release(self) -> None:
        if self.lock is not None:
            self.lock.release()


ModelCheck = Callable[[Path], None]


def open_run_dir(
    name: str,
    out: str | os.PathLike | None,
    *,
    resolved: dict[str, Any],
    root: str | os.PathLike = "runs",
    check_model: ModelCheck | None = None,
) -> RunDir:
    """`--out`, or runs/<name>-<timestamp>/; locked for this process until `release()`.

    `--out` may be new, empty, or an interrupted run of the same spec (which resumes);
    never a finished run, a run of another spec, or a folder of other files. Before an
    interrupted run is resumed, `check_model` (training passes safe_keras.inspect_keras_file)
    is called on each of its model files and refuses a planted or altered one by raising;
    None skips that check, for callers that only set up runs (tests), never for a resume.
    """
    if out is not None:
        path = Path(out)
        if path.exists() and not path.is_dir():
            raise UsageError(f"--out {path} exists and is not a directory")
        _check_reusable(path, resolved, check_model)  # before creating anything in a folder not ours
    else:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = Path(root) / f"{name}-{stamp}"
        suffix = 1
        while path.exists():
            suffix += 1
            path = Path(root) / f"{name}-{stamp}-{suffix}"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RuntimeFailure(f"cannot create the run directory {path}: {exc}") from None
    lock = RunLock(path).acquire()
    try:
        _check_reusable(path, resolved, check_model)  # again, now that no other process can change it
        _refuse_links(path)
        atomic.remove_stale_temporaries(path)  # what a killed writer left; ours alone hold the lock now
        if (path / BACKUP_DIR).is_dir():
            atomic.remove_stale_temporaries(path / BACKUP_DIR)
        if not _has_progress(path):  # a new run, or one with no finished epoch
            write_json(
                path / MARKER_FILE,
                {
                    "kbuilder_run": 1,
                    "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                    "resolved_spec": resolved,
                },
            )
    except BaseException:
        lock.release()
        raise
    return RunDir(path, lock)


def _contents(path: Path) -> list[str]:
    return sorted(
        p.name for p in path.iterdir() if p.name != LOCK_FILE and not p.name.startswith(atomic.TEMP_PREFIX)
    )


def _check_reusable(path: Path, resolved: dict[str, Any], check_model: ModelCheck | None) -> None:
    if not path.is_dir():
        return
    names = _contents(path)
    if not names:
        return
    if METRICS_FILE in names:
        raise UsageError(
            f"--out {path} holds a finished run (it has {METRICS_FILE}); "
            "choose a new directory, or delete this one to train it again"
        )
    if MARKER_FILE not in names:
        shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        raise UsageError(
            f"--out {path} is not empty ({shown}) and holds no kbuilder run; "
            "choose a new or empty directory (nothing in it was changed)"
        )
    if not _has_progress(path):
        return  # no epoch finished (it failed or was killed in its first): nothing to resume or lose
    if check_model is not None:
        _refuse_foreign_models(path, check_model)
    saved = _marker_spec(path)
    differences = _differences(saved, resolved)
    if differences:
        raise UsageError(
            f"--out {path} is an interrupted run of another spec or other settings ({', '.join(differences[:6])} differ); "
            f"resume it with `kbuilder train --resume {path}`, or choose another --out"
        )


def _refuse_foreign_models(path: Path, check_model: ModelCheck) -> None:
    """A resumed run keeps its models: a planted or altered .keras file stops the resume
    (it is checked as untrusted input, never loaded)."""
    for name in (BEST_MODEL, LAST_MODEL):
        if os.path.lexists(path / name):
            check_model(path / name)


def _has_progress(path: Path) -> bool:
    """Whether an unfinished run has finished epochs (a backup, or rows in its history)."""
    return (path / BACKUP_DIR / BACKUP_STATE).is_file() or bool(read_history(RunDir(path)))


def _marker_spec(path: Path) -> dict[str, Any]:
    try:
        marker = json.loads((path / MARKER_FILE).read_text())
        saved = marker["resolved_spec"]
    except (OSError, ValueError, KeyError, TypeError):
        raise UsageError(
            f"{path / MARKER_FILE} is damaged; this run cannot be resumed safely, choose another --out"
        ) from None
    if not isinstance(saved, dict):
        raise UsageError(
            f"{path / MARKER_FILE} is damaged; this run cannot be resumed safely, choose another --out"
        )
    return saved


def _differences(saved: Any, current: Any, prefix: str = "") -> list[str]:
    """Dotted paths where two resolved specs differ (RESUMABLE_CHANGES excepted)."""
    if isinstance(saved, dict) and isinstance(current, dict):
        found = []
        for key in sorted(set(saved) | set(current), key=str):
            where = f"{prefix}.{key}" if prefix else str(key)
            if tuple(where.split(".")) in RESUMABLE_CHANGES:
                continue
            found += _differences(saved.get(key), current.get(key), where)
        return found
    return [] if saved == current else [prefix or "the spec"]


def _refuse_links(path: Path) -> None:
    """A link planted in a run directory would make a write land outside it."""
    for directory, dirnames, filenames in os.walk(path, followlinks=False):
        for name in dirnames + filenames:
            entry = Path(directory) / name
            if entry.is_symlink():
                raise UsageError(
                    f"the run directory {path} holds a symbolic link ({entry} -> {os.readlink(entry)}); "
                    "kbuilder writes only real files inside a run directory: remove the link"
                )


def write_spec(run: RunDir, resolved: dict[str, Any]) -> None:
    header = "# The fully resolved spec of this run (defaults filled in, --set overrides applied).\n"
    atomic.write_text(run / SPEC_FILE, header + yaml.safe_dump(resolved, sort_keys=False, allow_unicode=True))


def save_model(model: Any, path: Path) -> None:
    """model.save through a temporary `.keras` file: never a 0-byte or half-zipped model."""
    atomic.write_with(path, lambda tmp: model.save(tmp), suffix=".keras")


def read_best(run: RunDir) -> dict[str, Any] | None:
    """best.json: {monitor, value, epoch} of best.keras, or None."""
    try:
        state = json.loads((run / BEST_STATE).read_text())
    except (OSError, ValueError):
        return None
    ok = (
        isinstance(state, dict)
        and isinstance(state.get("value"), (int, float))
        and isinstance(state.get("epoch"), int)
    )
    return state if ok else None


def remove_backup(run: RunDir) -> None:
    """Once metrics.json is written the run is finished and its backup is no longer needed."""
    if run.backup.is_dir() and not run.backup.is_symlink():
        shutil.rmtree(run.backup, ignore_errors=True)


def read_history(run: RunDir) -> list[dict[str, Any]]:
    path = run / HISTORY_JSON
    if not path.is_file():
        return []
    try:
        rows = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    return [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []
