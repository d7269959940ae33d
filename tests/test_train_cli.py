"""`kbuilder train` on the command line: overrides, errors and exit codes."""

from __future__ import annotations

import io
import json
import re
from contextlib import redirect_stderr, redirect_stdout

import pytest

from tests.test_train_support import DATASETS, current_backend, write_spec

pytestmark = pytest.mark.slow


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """Run the real `kbuilder` entry point in this process; (exit code, stdout, stderr)."""
    from kbuilder.cli import app as cli

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = cli.main(argv)
    return code, out.getvalue(), err.getvalue()


def test_train_with_overrides_prints_metrics(tmp_path):
    spec = write_spec(tmp_path)
    code, stdout, stderr = run_cli(
        [
            "train",
            str(spec),
            "--data-dir",
            str(DATASETS),
            "--out",
            str(tmp_path / "run"),
            "--backend",
            current_backend(),
            "--epochs",
            "1",
            "--set",
            "train.data.limit=400",
            "--set",
            "train.batch_size=16",
            "--no-export",
            "--json",
        ]
    )
    assert code == 0, stderr
    report = json.loads(stdout)
    assert report["epochs_run"] == 1 and report["settings"]["batch_size"] == 16
    assert report["data"]["train_samples"] == 320
    resolved = (tmp_path / "run" / "spec.yaml").read_text()
    assert "limit: 400" in resolved and "batch_size: 16" in resolved


def test_plain_output_is_a_short_summary(tmp_path):
    spec = write_spec(tmp_path)
    code, stdout, stderr = run_cli(
        [
            "train",
            str(spec),
            "--data-dir",
            str(DATASETS),
            "--out",
            str(tmp_path / "run"),
            "--backend",
            current_backend(),
            "--epochs",
            "1",
            "--set",
            "train.data.limit=200",
            "--no-export",
        ]
    )
    assert code == 0, stderr
    assert "run directory:" in stdout and "test_accuracy=" in stdout and "s/epoch" in stdout
    # One line per epoch when the output is not a terminal, counted in batches: 160 training
    # samples of 32 are 5 batches, which the spec's steps_per_execution (8) fuses into one
    # Keras step (Keras's own bar said `1/1`); the epoch's time once, not as a `seconds` metric.
    lines = [line for line in stdout.splitlines() if line.startswith("Epoch ")]
    assert len(lines) == 1, stdout
    assert re.fullmatch(r"Epoch 1/1 - 5 batches in \d+\.\d\d s \([\d.]+ m?s/batch\) - .*", lines[0]), lines
    assert " - loss: " in lines[0] and "seconds" not in stdout and "/step" not in stdout


def test_a_bad_override_is_refused_with_exit_code_2(tmp_path):
    spec = write_spec(tmp_path)
    code, _, stderr = run_cli(
        ["train", str(spec), "--set", "train.batch_size=-3", "--out", str(tmp_path / "run")]
    )
    assert code == 2
    assert "--set train.batch_size=-3" in stderr and "train.batch_size" in stderr
    assert not (tmp_path / "run").exists()


def test_missing_data_is_a_data_error(tmp_path):
    spec = write_spec(tmp_path)
    code, _, stderr = run_cli(
        [
            "train",
            str(spec),
            "--set",
            "train.data.source={type: npz, path: nowhere.npz}",
            "--out",
            str(tmp_path / "run"),
            "--backend",
            current_backend(),
        ]
    )
    assert code == 2 and "nowhere.npz" in stderr


def test_an_unknown_backend_is_a_usage_error(tmp_path):
    code, _, stderr = run_cli(["train", str(write_spec(tmp_path)), "--backend", "theano"])
    assert code == 2 and "theano" in stderr


@pytest.mark.parametrize(
    ("existing", "says"), [("metrics.json", "holds a finished run"), ("notes.txt", "holds no kbuilder run")]
)
def test_out_never_overwrites_a_finished_run_or_other_files(tmp_path, existing, says):
    out = tmp_path / "run"
    out.mkdir()
    (out / existing).write_text("{}")
    code, _, stderr = run_cli(
        ["train", str(write_spec(tmp_path)), "--out", str(out), "--backend", current_backend()]
    )
    assert code == 2 and says in stderr
    assert [f.name for f in out.iterdir()] == [existing] and (out / existing).read_text() == "{}"


def cli_main(argv: list[str]) -> int:
    """The entry point, for subprocesses (python -c ...)."""
    from kbuilder.cli import app as cli

    return cli.main(argv)
