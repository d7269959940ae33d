"""The run directory: what a training run leaves behind, and how an interrupted run is found.

    <run>/spec.yaml        the fully resolved spec (defaults filled, overrides applied)
    <run>/history.csv      per-epoch figures (Keras CSVLogger)
    <run>/history.json     the same, with epoch seconds and learning rate
    <run>/metrics.json     final figures, timings, settings, backend and device
    <run>/best.keras       the best model by the checkpoint's monitor
    <run>/last.keras       the model after the last epoch
    <run>/export/          SavedModel + model.keras + manifest.json (kbuilder.export)
    <run>/logs/            TensorBoard logs
    <run>/curves.png       loss and accuracy per epoch, train vs validation
    <run>/backup/          training state while a run is unfinished (removed when it ends)
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kbuilder.errors import RuntimeFailure, UsageError

SPEC_FILE = "spec.yaml"
METRICS_FILE = "metrics.json"
HISTORY_JSON = "history.json"
HISTORY_CSV = "history.csv"
BEST_MODEL = "best.keras"
LAST_MODEL = "last.keras"
EXPORT_DIR = "export"
LOG_DIR = "logs"
CURVES = "curves.png"
BACKUP_DIR = "backup"


@dataclass(frozen=True)
class RunDir:
    path: Path

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    @property
    def backup(self) -> Path:
        return self.path / BACKUP_DIR

    def resume_epoch(self) -> int | None:
        """The epoch an unfinished run stopped after (None when there is nothing to resume)."""
        meta = self.backup / "training_metadata.json"
        if not meta.is_file():
            return None
        try:
            return int(json.loads(meta.read_text())["epoch"])
        except (OSError, ValueError, KeyError, TypeError):
            return None


def new_run_dir(name: str, out: str | os.PathLike | None, *, root: str | os.PathLike = "runs") -> RunDir:
    """`--out`, or runs/<name>-<timestamp>/ (with a suffix if that exists already)."""
    if out is not None:
        path = Path(out)
        if path.exists() and not path.is_dir():
            raise UsageError(f"--out {path} exists and is not a directory")
        _refuse_to_overwrite(path)
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
    return RunDir(path)


def _refuse_to_overwrite(path: Path) -> None:
    """--out may be new, empty, or an unfinished run (which resumes); never a finished run or
    a folder of other files, whose contents a new run would overwrite piece by piece."""
    if not path.is_dir() or not any(path.iterdir()):
        return
    if (path / BACKUP_DIR).is_dir():
        return  # interrupted: resumes
    if (path / METRICS_FILE).is_file():
        raise UsageError(f"--out {path} holds a finished run (it has {METRICS_FILE}); "
                         "choose a new directory, or delete this one to train it again")
    if not (path / SPEC_FILE).is_file():
        raise UsageError(f"--out {path} is not empty and holds no kbuilder run; choose a new or empty directory")


def write_json(path: Path, data: Any) -> None:
    """Written to a temporary file and renamed, so a reader never sees half a file."""
    text = json.dumps(_finite(data), indent=2, sort_keys=False)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text + "\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _finite(value: Any) -> Any:
    """JSON has no NaN/inf: they become null (a diverged loss is still reported, as null)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def write_spec(run: RunDir, resolved: dict[str, Any]) -> None:
    import yaml

    header = "# The fully resolved spec of this run (defaults filled in, --set overrides applied).\n"
    (run / SPEC_FILE).write_text(header + yaml.safe_dump(resolved, sort_keys=False, allow_unicode=True))


def read_history(run: RunDir) -> list[dict[str, Any]]:
    path = run / HISTORY_JSON
    if not path.is_file():
        return []
    try:
        rows = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    return rows if isinstance(rows, list) else []
