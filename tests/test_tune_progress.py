"""What `kbuilder tune` shows while trials run: each running trial's values and epochs (a line
per trial redrawn on a terminal, plain lines when piped) before any trial finishes."""

from __future__ import annotations

import io

import optuna

from kbuilder.experiments.tune.progress import Progress, running_line
from kbuilder.spec import loads_spec
from tests.test_tune_spec import SPEC


def search():
    return loads_spec(
        SPEC + "  metric: val_accuracy\n  sampler: random\n  space: {params.width: {int: [2, 16]}}\n",
        file="tune.yaml",
    ).spec.search


def study_with_two_running_trials() -> tuple[optuna.Study, list[optuna.Trial]]:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize")
    trials = [study.ask() for _ in range(2)]
    for index, trial in enumerate(trials):
        trial.suggest_int("params.width", 2, 16)
        if index == 0:
            trial.set_user_attr("progress", {"epoch": 2, "epochs": 10, "loss": 0.31, "val_accuracy": 0.9312})
    return study, trials


def test_a_running_trial_shows_its_epoch_metric_and_values():
    study, _ = study_with_two_running_trials()
    first, second = (study.trials[0], study.trials[1])
    line = running_line(first, search())
    assert line.startswith("trial 0 epoch 2/10 val_accuracy=0.9312 loss=0.31 | params.width=")
    assert running_line(second, search()).startswith("trial 1 starting | params.width=")


def test_piped_progress_writes_a_line_per_new_epoch_and_per_finished_trial():
    study, trials = study_with_two_running_trials()
    stream = io.StringIO()
    progress = Progress(search(), target=4, stream=stream, live=False)
    progress.poll(study)
    progress.poll(study)  # nothing new: nothing written
    lines = stream.getvalue().splitlines()
    assert [line.split(" |")[0] for line in lines] == [
        "trial 0 epoch 2/10 val_accuracy=0.9312 loss=0.31",
        "trial 1 starting",
    ]
    trials[0].set_user_attr("progress", {"epoch": 3, "epochs": 10, "val_accuracy": 0.94})
    study.tell(trials[1], 0.95)
    progress.poll(study)
    new = stream.getvalue().splitlines()[2:]
    assert new[0].startswith("[1/4] trial 1 complete val_accuracy=0.95")
    assert new[1].startswith("trial 0 epoch 3/10 val_accuracy=0.94")
    assert "\x1b" not in stream.getvalue()  # no terminal codes in a pipe


def test_on_a_terminal_the_running_lines_are_redrawn_in_place():
    study, trials = study_with_two_running_trials()
    stream = io.StringIO()
    progress = Progress(search(), target=4, stream=stream, live=True)
    progress.poll(study)
    assert stream.getvalue().count("\n") == 2 and "\x1b[" not in stream.getvalue()
    trials[0].set_user_attr("progress", {"epoch": 3, "epochs": 10, "val_accuracy": 0.94})
    progress.poll(study)
    redraw = stream.getvalue().split("\n", 2)[2]
    assert redraw.startswith("\x1b[2F\x1b[J") and "epoch 3/10" in redraw  # up two lines, cleared, drawn again
    progress.finish()
    assert stream.getvalue().endswith("\x1b[2F\x1b[J")  # the running lines leave with the study


def test_optuna_failure_records_lose_their_tracebacks_unless_debug(monkeypatch):
    import logging

    from kbuilder.experiments.tune.trial import Interrupted, QuietFailures, TrialFailed

    def record(message, error=None):
        exc_info = (type(error), error, None) if error else None
        return logging.LogRecord("optuna.study._optimize", logging.WARNING, "", 0, message, (), exc_info)

    monkeypatch.delenv("KBUILDER_DEBUG", raising=False)
    quiet = QuietFailures()
    assert not quiet.filter(
        record("Trial 3 failed with parameters: {} because of Interrupted().", Interrupted())
    )
    assert not quiet.filter(record("Trial 3 failed with value None."))
    assert not quiet.filter(
        record("Trial 4 failed with parameters: {} because of TrialFailed().", TrialFailed())
    )
    other = record("Trial 5 failed with parameters: {} because of ValueError().", ValueError("x"))
    assert quiet.filter(other) and other.exc_info is None  # said, without the traceback
    assert quiet.filter(record("Trial 5 failed with value None."))
    monkeypatch.setenv("KBUILDER_DEBUG", "1")
    kept = record("Trial 6 failed with parameters: {} because of Interrupted().", Interrupted())
    assert quiet.filter(kept) and kept.exc_info is not None
