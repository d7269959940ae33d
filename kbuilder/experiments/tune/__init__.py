"""Hyperparameter search on Optuna (`kbuilder tune`).

    storage.py the database: URLs taken, opening it, losing it mid-study
    study.py   where a study lives (folder, storage, heartbeats) and how its trials are counted
    space.py   the searched values as Optuna suggestions, the samplers and the pruners
    trial.py   one trial: sample, validate the sampled spec, train it as an ordinary run
    run.py     the worker loops (in this process or several), Ctrl-C
    progress.py   the finished trials' lines and the running ones' epochs
    best.py    best.yaml: the best trial's spec, its `expect` and epochs rewritten
    report.py  the trials table, best.yaml, plots and summary.json of a study

Importing this package loads Optuna but not Keras: a trial imports Keras when it starts.
"""

from kbuilder.experiments.tune.progress import Progress
from kbuilder.experiments.tune.report import render_table, write_report
from kbuilder.experiments.tune.run import INTERRUPTED, check_workers, run_study, target_of
from kbuilder.experiments.tune.storage import storage_url
from kbuilder.experiments.tune.study import (
    TuneConfig,
    default_study_dir,
    load_study_for_report,
    open_study,
    shown_url,
)

__all__ = [
    "INTERRUPTED",
    "Progress",
    "TuneConfig",
    "check_workers",
    "default_study_dir",
    "load_study_for_report",
    "open_study",
    "render_table",
    "run_study",
    "shown_url",
    "storage_url",
    "target_of",
    "write_report",
]
