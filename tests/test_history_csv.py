"""history.csv counts epochs from 1, as history.json, best.json and the curves do; runs
written before that counted from 0 and still read right."""

from __future__ import annotations

from kbuilder.storage.run_reader import read_run_history
from kbuilder.train.callbacks import history_csv


def test_the_csv_counts_epochs_as_history_json_does(tmp_path):
    rows = [{"epoch": 1, "loss": 0.5}, {"epoch": 2, "loss": 0.25}]
    text = history_csv(rows, ",")
    assert text.splitlines() == ["epoch,loss", "1,0.5", "2,0.25"]
    (tmp_path / "history.csv").write_text(text)
    assert [r["epoch"] for r in read_run_history(tmp_path)] == [1, 2]


def test_a_csv_of_an_earlier_run_counting_from_0_reads_from_1(tmp_path):
    (tmp_path / "history.csv").write_text("epoch,loss\n0,0.5\n1,0.25\n")
    assert [(r["epoch"], r["loss"]) for r in read_run_history(tmp_path)] == [(1, 0.5), (2, 0.25)]
