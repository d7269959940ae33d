"""Reading finished (or unfinished) run directories that `kbuilder train` wrote (rundir.py
writes them), for the experiments: compare and ensemble.

Run directories are untrusted input like a spec: the YAML is read with kbuilder's safe,
bounded loader, JSON files are size-limited, and every problem names the file and, for a
parse error, its line and column.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kbuilder.errors import UsageError
from kbuilder.storage import rundir as rd

MAX_JSON_BYTES = 20_000_000  # a metrics.json or history.json is kilobytes; refuse anything absurd


class RunError(UsageError):
    """A path given as a run directory is missing, not a run, or holds a corrupt file."""

    title = "invalid run directory"


@dataclass
class RunRecord:
    """What one run left behind: its resolved spec, final metrics and per-epoch history."""

    path: Path
    spec: dict[str, Any]
    metrics: dict[str, Any] | None  # None: the run has not finished
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.metrics is not None


def is_run_dir(path: Path) -> bool:
    return path.is_dir() and (path / rd.SPEC_FILE).is_file()


# The spec's safe YAML loader, kbuilder.spec.loader.read_yaml: (data, source map), a located
# SpecError on bad YAML. Storage sits below spec, so the caller hands it in; yaml.safe_load
# would lose its limits (aliases, depth, size, duplicate keys) and its file:line:column errors.
YamlReader = Callable[[Path], tuple[Any, Any]]


def read_run(path: str | Path, read_yaml: YamlReader, *, need_metrics: bool = False) -> RunRecord:
    """The run in `path`; RunError (exit 2) when it is missing or corrupt."""
    path = Path(path)
    if not path.exists():
        raise RunError(f"{path}: no such run directory")
    if not path.is_dir():
        raise RunError(f"{path}: not a directory (expected a run directory written by `kbuilder train`)")
    spec_file = path / rd.SPEC_FILE
    if not spec_file.is_file():
        raise RunError(
            f"{path}: not a run directory (it has no {rd.SPEC_FILE}, which `kbuilder train` writes into every run)"
        )
    spec, _ = read_yaml(spec_file)  # located SpecError on bad YAML
    if not isinstance(spec, dict):
        raise RunError(f"{spec_file}:1:1: expected the resolved spec (a mapping), got {type(spec).__name__}")
    metrics_file = path / rd.METRICS_FILE
    metrics = read_json(metrics_file, dict) if metrics_file.is_file() else None
    if metrics is None and need_metrics:
        raise RunError(
            f"{path}: the run has not finished (no {rd.METRICS_FILE}); "
            f"finish it with `kbuilder train --resume {path}`"
        )
    return RunRecord(path, spec, metrics, read_run_history(path))


def read_json(file: Path, kind: type) -> Any:
    """A JSON file of the expected top-level type, with a located error if it is not."""
    try:
        if file.stat().st_size > MAX_JSON_BYTES:
            raise RunError(f"{file}: {file.stat().st_size} bytes; a run file is never above {MAX_JSON_BYTES}")
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RunError(f"{file}: cannot read it ({exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RunError(
            f"{file}:{exc.lineno}:{exc.colno}: not valid JSON ({exc.msg}); "
            "the file is written by `kbuilder train`: train the run again or leave it out"
        ) from None
    if not isinstance(data, kind):
        expected = "an object" if kind is dict else "a list"
        raise RunError(f"{file}:1:1: expected {expected}, got {type(data).__name__}")
    return data


def read_run_history(path: Path) -> list[dict[str, Any]]:
    """Per-epoch rows from history.json, else history.csv; [] when the run has neither."""
    json_file, csv_file = path / rd.HISTORY_JSON, path / rd.HISTORY_CSV
    if json_file.is_file():
        rows = read_json(json_file, list)
        for index, row in enumerate(rows):
            if not isinstance(row, dict):
                raise RunError(
                    f"{json_file}: row {index} is {type(row).__name__}, expected an object of figures"
                )
        return rows
    if not csv_file.is_file():
        return []
    try:
        with open(csv_file, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise RunError(f"{csv_file}: cannot read it ({exc})") from None
    history = []
    for line, row in enumerate(rows, start=2):
        try:
            parsed = {key: float(value) for key, value in row.items() if key and value not in (None, "")}
        except ValueError as exc:
            raise RunError(f"{csv_file}:{line}:1: not a number ({exc})") from None
        if "epoch" in parsed:
            parsed["epoch"] = int(parsed["epoch"])
        history.append(parsed)
    # Earlier runs counted history.csv's epochs from 0 (as Keras's CSVLogger);
    # they count from 1 now, as history.json does. A file whose first epoch is 0 is an old one.
    if history and history[0].get("epoch") == 0:
        for row in history:
            row["epoch"] = row.get("epoch", -1) + 1
    return history
