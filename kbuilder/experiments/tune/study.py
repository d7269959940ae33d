"""Where a study lives and how it is counted: the study folder, the storage, heartbeats, the target.

The storage is Optuna's RDB storage: by default SQLite in the study folder
(`runs/tune-<study>/study.db`), or any SQLAlchemy URL (`postgresql://user@host/db`) that
workers on several machines share. Running trials send a heartbeat; a trial whose worker died
(killed, machine lost) goes stale after three missed beats, is marked failed and retried with
the same values (Optuna's RetryHeartbeatStaleTrialCallback).

What counts towards the requested number of trials: complete and pruned trials, and failed
ones that ran and failed on their own (a spec that does not build, a diverged loss: they carry
an `error`). Trials failed because their worker died, and surplus trials a worker asked for
after the count was reached, do not count.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import RDBStorage
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from kbuilder.errors import UsageError, did_you_mean
from kbuilder.experiments.tune.space import make_pruner, make_sampler
from kbuilder.experiments.tune.storage import open_storage as _open_storage
from kbuilder.experiments.tune.storage import shown_url
from kbuilder.spec import LoadedSpec
from kbuilder.spec.search import SearchSpec

STUDY_DB = "study.db"
TRIALS_DIR = "trials"


@dataclass
class TuneConfig:
    """Everything a worker process needs (plain data, so it crosses process boundaries)."""

    spec_file: str
    overrides: list[str] = field(default_factory=list)
    study_name: str = ""
    study_dir: str = ""
    storage: str = ""
    workers: int = 1
    trials: int | None = None  # the target; default: the search section's
    data_dir: str | None = None
    backend: str | None = None
    export: bool = False
    heartbeat: int = 10  # seconds between a running trial's heartbeats

    def resolved_storage(self) -> str:
        return self.storage or f"sqlite:///{(Path(self.study_dir).resolve() / STUDY_DB).as_posix()}"


def search_section(loaded: LoadedSpec) -> SearchSpec:
    """The spec's search section (`kbuilder tune` refuses a spec without one up front)."""
    if loaded.spec.search is None:
        raise UsageError(f"{loaded.path} has no search section")
    return loaded.spec.search


def train_epochs(loaded: LoadedSpec) -> int:
    """The epochs each trial trains (`kbuilder tune` refuses a spec without train up front)."""
    if loaded.spec.train is None:
        raise UsageError(f"{loaded.path} has no train section: trials train the model")
    return loaded.spec.train.epochs


def default_study_dir(study_name: str) -> Path:
    return Path("runs") / f"tune-{study_name}"


def quiet_optuna() -> None:
    """Optuna's per-trial INFO lines and its 'experimental feature' warnings (heartbeats, the
    matplotlib plots) are noise here; TensorFlow's retracing notes too (each trial is a new model)."""
    optuna.logging.set_verbosity(logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)


def open_storage(url: str, heartbeat: int) -> RDBStorage:
    """The study's storage (storage.py), Optuna's chatter quieted first."""
    quiet_optuna()
    return _open_storage(url, heartbeat)


def open_study(
    config: TuneConfig, search: SearchSpec, spec_data: dict[str, Any] | None = None, epochs: int = 10
) -> optuna.Study:
    """Create the study, or join it; refuse one made with a different search section."""
    storage = open_storage(config.resolved_storage(), config.heartbeat)
    study = optuna.create_study(
        storage=storage,
        study_name=config.study_name,
        direction=StudyDirection.MAXIMIZE if search.goal() == "maximize" else StudyDirection.MINIMIZE,
        sampler=make_sampler(search),
        pruner=make_pruner(search, epochs),
        load_if_exists=True,
    )
    current = search_signature(search)
    stored = study.user_attrs.get("search")
    if stored is None:
        study.set_user_attr("search", current)
        study.set_user_attr("spec_file", config.spec_file)
        if spec_data is not None:
            study.set_user_attr("spec_data", spec_data)
    elif stored != current:
        raise UsageError(
            f"the study '{config.study_name}' in {shown_url(config.resolved_storage())} was started with a different "
            "search section; give a new --study name (or --out folder) for this one"
        )
    return study


def search_signature(search: SearchSpec) -> dict[str, Any]:
    """What must match to join a study (the number of trials may change between runs)."""
    return search.model_dump(mode="json", exclude={"trials"})


def counted(trial: FrozenTrial) -> bool:
    if trial.state in (TrialState.COMPLETE, TrialState.PRUNED):
        return True
    return trial.state == TrialState.FAIL and "error" in trial.user_attrs


@dataclass
class Counts:
    done: int = 0  # counted towards the target
    complete: int = 0
    pruned: int = 0
    failed: int = 0  # failed on their own (counted)
    running: int = 0
    waiting: int = 0  # queued, e.g. retries of trials whose worker died


def count_trials(study: optuna.Study) -> Counts:
    counts = Counts()
    for trial in study.get_trials(deepcopy=False):
        counts.done += counted(trial)
        counts.complete += trial.state == TrialState.COMPLETE
        counts.pruned += trial.state == TrialState.PRUNED
        counts.failed += trial.state == TrialState.FAIL and "error" in trial.user_attrs
        counts.running += trial.state == TrialState.RUNNING
        counts.waiting += trial.state == TrialState.WAITING
    return counts


def is_duplicate_retry(study: optuna.Study, number: int) -> bool:
    """True when another worker queued the same retry first. On SQLite two workers can both
    fail one stale trial (it has no row locks), and each queues a retry; the lower number runs."""
    trials = study.get_trials(deepcopy=False)

    def key(trial):
        return trial.system_attrs.get("failed_trial"), tuple(trial.system_attrs.get("retry_history", ()))

    mine = next(t for t in trials if t.number == number)
    if key(mine)[0] is None:
        return False
    return any(t.number < number and key(t) == key(mine) and not t.user_attrs.get("surplus") for t in trials)


def is_surplus(study: optuna.Study, number: int, target: int) -> bool:
    """True when trials before this one (finished, running or queued) already make the target.
    Trial numbers come from the storage in order, so of two workers racing for the last
    place the lower number trains and the other stands down."""
    ahead = 0
    for trial in study.get_trials(deepcopy=False):
        if trial.number == number:
            continue
        if counted(trial) or (
            trial.state in (TrialState.RUNNING, TrialState.WAITING) and trial.number < number
        ):
            ahead += 1
    return ahead >= target


def load_study_for_report(
    folder: Path, storage: str | None, study_name: str | None
) -> tuple[optuna.Study, SearchSpec, str]:
    """A finished (or running) study to report on: the study, its search section and the
    storage URL as shown (without password). `storage` None: the SQLite file in `folder`;
    `study_name` None: the storage's only study."""
    if storage is None:
        if not (folder / STUDY_DB).is_file():
            raise UsageError(
                f"{folder} is not a study folder (it has no {STUDY_DB}); "
                "give the folder of `kbuilder tune`, or --storage URL"
            )
        storage = f"sqlite:///{(folder.resolve() / STUDY_DB).as_posix()}"
    backend = open_storage(storage, heartbeat=60)
    names = study_names(backend)
    if study_name is None:
        if len(names) != 1:
            raise UsageError(
                f"{shown_url(storage)} holds {len(names)} studies ({', '.join(names) or 'none'}); "
                "choose one with --study"
            )
        study_name = names[0]
    if study_name not in names:
        raise UsageError(f"no study '{study_name}' in {shown_url(storage)}{did_you_mean(study_name, names)}")
    study = optuna.load_study(study_name=study_name, storage=backend)
    if "search" not in study.user_attrs:
        raise UsageError(f"the study '{study_name}' was not made by kbuilder tune (it has no search section)")
    return study, SearchSpec.model_validate(study.user_attrs["search"]), shown_url(storage)


def study_names(storage: RDBStorage) -> list[str]:
    """The names of the studies in an opened storage."""
    return [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]
