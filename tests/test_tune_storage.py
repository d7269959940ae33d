"""The study's database (issue 18): URLs taken or refused with a reason, the bound on workers,
several tuners creating one new SQLite study at once, the URL the docs write for PostgreSQL, and a
server stopped mid-study (one message, exit 3, nothing lost)."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from pathlib import Path

import optuna
import pytest

import kbuilder.api as kb
from kbuilder.errors import UsageError
from tests.postgres import postgres_server, restart_server, stop_server
from tests.test_tune import SPEC, load, tune, wait_for_running_trial


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_an_in_memory_sqlite_study_is_refused_with_a_reason(tmp_path, url):
    (tmp_path / "spec.yaml").write_text(SPEC)
    with pytest.raises(UsageError, match="an in-memory SQLite database lives inside one process"):
        kb.tune(tmp_path / "spec.yaml", storage=url, out=tmp_path / "study")
    assert not (tmp_path / "study").exists()  # refused before anything is written


def test_workers_are_bounded_by_cores_and_free_memory(tmp_path, monkeypatch):
    from kbuilder.experiments.tune import run

    monkeypatch.setattr(run, "available_memory", lambda: 3 << 30)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)))
    run.check_workers(3)
    with pytest.raises(UsageError) as caught:
        run.check_workers(256)
    assert "--workers 256: this machine runs at most 3 (it has 8 cores and 3.0 GB of free memory" in str(
        caught.value
    )
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    with pytest.raises(UsageError, match="runs at most 2 .*give --workers 2 or less"):
        run.check_workers(3)


def test_a_postgresql_url_without_a_driver_gets_the_installed_one():
    from kbuilder.experiments.tune.storage import storage_url

    url = storage_url("postgresql://user:secret@db.example/optuna")
    driver = url.split("://", 1)[0]
    assert driver in ("postgresql+psycopg", "postgresql+psycopg2")
    __import__(driver.split("+")[1])  # the driver named is importable here
    assert url.endswith("user:secret@db.example/optuna")
    assert storage_url("postgresql+psycopg2://u@h/db") == "postgresql+psycopg2://u@h/db"  # as given


def _open_at_once(url: str, start, results) -> None:
    from kbuilder.experiments.tune.storage import open_storage

    start.wait()
    try:
        optuna.create_study(storage=open_storage(url, heartbeat=10), study_name="s", load_if_exists=True)
        results.put("ok")
    except Exception as exc:  # noqa: BLE001  (the test reports what each process met)
        results.put(f"{type(exc).__name__}: {exc}")


@pytest.mark.subprocess
def test_processes_creating_one_new_sqlite_study_at_once_all_join_it(tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    context = multiprocessing.get_context("spawn")
    start, results = context.Event(), context.Queue()
    processes = [context.Process(target=_open_at_once, args=(url, start, results)) for _ in range(6)]
    for process in processes:
        process.start()
    time.sleep(3)  # every process imported Optuna and waits at the start line
    start.set()
    outcomes = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=60)
    assert outcomes == ["ok"] * 6, outcomes
    assert [s.study_name for s in optuna.get_all_study_summaries(url, include_best_trial=False)] == ["s"]


@pytest.mark.slow
@pytest.mark.subprocess
def test_two_tuners_started_at_once_on_a_new_sqlite_study_both_join_it(tmp_path):
    (tmp_path / "spec.yaml").write_text(SPEC)
    first = tune(tmp_path, "--trials", "4", "-q", wait=False)
    second = tune(tmp_path, "--trials", "4", "-q", wait=False)
    for process in (first, second):
        _, err = process.communicate(timeout=600)
        assert process.returncode == 0, err
        assert "Traceback" not in err and "IntegrityError" not in err
    trials = load(f"sqlite:///{tmp_path / 'runs' / 'tune-xor_tune' / 'study.db'}").get_trials()
    assert sum(t.state.is_finished() and not t.user_attrs.get("surplus") for t in trials) >= 4
    assert len({t.user_attrs["pid"] for t in trials if "pid" in t.user_attrs}) == 2  # both trained


@pytest.mark.slow
@pytest.mark.subprocess
@pytest.mark.postgres
def test_the_documented_postgresql_url_works_and_a_stopped_server_ends_with_one_message(tmp_path):
    (tmp_path / "spec.yaml").write_text(SPEC.replace("epochs: 2", "epochs: 30"))
    with postgres_server() as url:
        documented = url.replace(
            "postgresql+psycopg2://", "postgresql://"
        )  # as docs/experiments.md writes it
        process = tune(
            tmp_path, "--workers", "2", "--trials", "40", "--storage", documented, "--study", "pg", wait=False
        )
        wait_for_running_trial(url, process, complete=2, name="pg")
        finished = {t.number for t in load(url, "pg").get_trials() if t.state.is_finished()}
        stop_server(url)
        try:
            _, err = process.communicate(timeout=300)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
        assert process.returncode == 3, err
        assert "Traceback" not in err and "internal error" not in err, err
        assert err.count("the study database postgresql://postgres@/postgres") == 1, err
        assert "stopped answering" in err and "run the same command to continue the study" in err
        lines = err.splitlines()
        said = (
            lines[lines.index("kbuilder: failed:") :] if "kbuilder: failed:" in lines else lines
        )  # after the progress
        assert len(said) == 3 and said[0] == "kbuilder: failed:", err  # the message, its text, the hint
        # Nothing it recorded is lost: with the server back, the finished trials and their runs are there.
        restart_server(url)
        trials = load(url, "pg").get_trials()
        assert finished <= {t.number for t in trials if t.state.is_finished()}
        for trial in trials:
            if trial.number in finished:
                assert (Path(trial.user_attrs["run_dir"]) / "metrics.json").is_file()
