"""`kbuilder compare`: flattening specs to dotted paths, the differing-settings table, the
overlaid learning curves, and located errors for missing or corrupt run directories."""

from __future__ import annotations

import json
import shutil

import pytest

from kbuilder.experiments.compare import MISSING, differing_paths, flatten, run_labels
from tests.test_ensemble import backend_args, blobs_spec, run_cli


def test_flatten_uses_the_dotted_paths_of_set():
    spec = {
        "layers": [{"flatten": {}}, {"dense": {"units": 8, "activation": "relu"}}],
        "train": {"seed": 0, "callbacks": []},
    }
    assert flatten(spec) == {
        "layers.0.flatten": {},
        "layers.1.dense.units": 8,
        "layers.1.dense.activation": "relu",
        "train.seed": 0,
        "train.callbacks": [],
    }


def test_only_differing_paths_are_kept_including_ones_a_run_lacks():
    a = {"layers": [{"dense": {"units": 8, "activation": "relu"}}], "train": {"seed": 0, "lr": 0.1}}
    b = {
        "layers": [{"dense": {"units": 8, "activation": "sigmoid"}}],
        "train": {"seed": 0, "lr": 0.1, "extra": None},
    }
    c = {"layers": [{"dense": {"units": 8, "activation": "relu"}}], "train": {"seed": 0, "lr": 1}}
    assert differing_paths([a, b, c]) == ["layers.0.dense.activation", "train.lr", "train.extra"]
    assert differing_paths([a, a]) == []
    assert MISSING == "(absent)"


def test_labels_are_names_unless_two_runs_share_one(tmp_path):
    from pathlib import Path

    assert run_labels([Path("runs/a"), Path("runs/b")]) == ["a", "b"]
    assert run_labels([Path("x/run"), Path("y/run")]) == ["x/run", "y/run"]


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """The notes' comparison in miniature: the same spec with ReLU and with sigmoid, 2 epochs each."""
    folder = tmp_path_factory.mktemp("compare")
    spec, _, _ = blobs_spec(folder / "blobs.yaml", epochs=2)
    runs = {}
    for activation in ("relu", "sigmoid"):
        out = folder / activation
        code, stdout, stderr = run_cli(
            [
                "train",
                str(spec),
                "--set",
                f"layers[0].dense.activation={activation}",
                "--set",
                "train.data.validation={type: test}",
                "--out",
                str(out),
                "--no-export",
                "--quiet",
                *backend_args(),
            ]
        )
        assert code == 0, stdout + stderr
        runs[activation] = out
    return runs


@pytest.mark.slow
def test_the_table_shows_the_differing_setting_and_final_figures(two_runs, tmp_path):
    figure = tmp_path / "curves.png"
    code, stdout, stderr = run_cli(
        ["compare", str(two_runs["relu"]), str(two_runs["sigmoid"]), "-o", str(figure), "--format", "json"]
    )
    assert code == 0, stderr
    report = json.loads(stdout)
    assert report["differing_settings"] == ["layers.0.dense.activation"]
    relu, sigmoid = report["runs"]
    assert relu["settings"] == {"layers.0.dense.activation": "relu"} and sigmoid["settings"] == {
        "layers.0.dense.activation": "sigmoid"
    }
    for run, folder in zip(report["runs"], (two_runs["relu"], two_runs["sigmoid"])):
        metrics = json.loads((folder / "metrics.json").read_text())
        assert (
            run["metrics"]["test_accuracy"] == metrics["test_accuracy"]
            and run["metrics"]["val_loss"] == metrics["val_loss"]
        )
        assert run["finished"] and run["epochs_recorded"] == 2
    assert report["figure"] == str(figure)
    data = figure.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    assert not list(tmp_path.glob(".curves.png.*"))  # no temporary file left behind


@pytest.mark.slow
def test_plain_and_markdown_tables(two_runs, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")  # too narrow for a row per run: one row per setting
    code, stdout, _ = run_cli(
        ["compare", str(two_runs["relu"]), str(two_runs["sigmoid"]), "--format", "plain"]
    )
    assert code == 0
    lines = stdout.splitlines()
    assert any(line.split() == ["run", "relu", "sigmoid"] for line in lines), stdout
    assert any(line.split() == ["layers.0.dense.activation", "relu", "sigmoid"] for line in lines), stdout
    monkeypatch.setenv("COLUMNS", "200")
    code, stdout, _ = run_cli(
        ["compare", str(two_runs["relu"]), str(two_runs["sigmoid"]), "--format", "plain"]
    )
    assert code == 0
    lines = stdout.splitlines()
    header = next(line for line in lines if line.startswith("run "))
    assert "layers.0.dense.activation" in header and "test_accuracy" in header and "val_loss" in header
    assert any(line.startswith("relu ") and " relu " in line for line in lines)
    assert any(line.startswith("sigmoid ") and " sigmoid " in line for line in lines)
    code, stdout, _ = run_cli(
        ["compare", str(two_runs["relu"]), str(two_runs["sigmoid"]), "--format", "markdown"]
    )
    assert code == 0 and "| run | layers.0.dense.activation |" in stdout


@pytest.mark.slow
def test_history_csv_is_read_when_history_json_is_missing(two_runs, tmp_path):
    copy = tmp_path / "relu_csv"
    shutil.copytree(two_runs["relu"], copy)
    (copy / "history.json").unlink()
    code, stdout, stderr = run_cli(
        ["compare", str(copy), str(two_runs["sigmoid"]), "-o", str(tmp_path / "c.png"), "--format", "json"]
    )
    assert code == 0, stderr
    assert json.loads(stdout)["runs"][0]["epochs_recorded"] == 2


@pytest.mark.slow
def test_an_unfinished_run_is_shown_as_unfinished(two_runs, tmp_path):
    copy = tmp_path / "half"
    shutil.copytree(two_runs["sigmoid"], copy)
    (copy / "metrics.json").unlink()
    code, stdout, _ = run_cli(["compare", str(two_runs["relu"]), str(copy), "--format", "plain"])
    assert code == 0 and "half (unfinished)" in stdout


@pytest.mark.slow
def test_corrupt_metrics_name_file_line_and_column(two_runs, tmp_path):
    copy = tmp_path / "broken"
    shutil.copytree(two_runs["relu"], copy)
    (copy / "metrics.json").write_text('{\n  "test_accuracy": 0.9,\n  "test_loss": oops\n}\n')
    code, _, stderr = run_cli(["compare", str(copy), str(two_runs["sigmoid"])])
    assert code == 2
    assert f"{copy / 'metrics.json'}:3:16: not valid JSON" in stderr and "Traceback" not in stderr


@pytest.mark.slow
def test_corrupt_spec_yaml_is_located(two_runs, tmp_path):
    copy = tmp_path / "badspec"
    shutil.copytree(two_runs["relu"], copy)
    (copy / "spec.yaml").write_text("name: x\nlayers: [\n")
    code, stdout, _ = run_cli(["compare", str(copy), str(two_runs["sigmoid"]), "--format", "json"])
    report = json.loads(stdout)
    assert code == 2 and report["ok"] is False and str(copy / "spec.yaml") in report["problems"][0]


@pytest.mark.slow
@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p, "no such run directory"),
        (lambda p: (p.mkdir(), p)[1], "not a run directory"),
        (lambda p: (p.write_text("x"), p)[1], "not a directory"),
    ],
)
def test_missing_or_foreign_directories_exit_2(two_runs, tmp_path, make, message):
    target = make(tmp_path / "nothing")
    code, _, stderr = run_cli(["compare", str(two_runs["relu"]), str(target)])
    assert code == 2 and message in stderr and str(target) in stderr


@pytest.mark.slow
def test_one_run_or_a_bad_figure_name_is_a_usage_error(two_runs, tmp_path):
    code, _, stderr = run_cli(["compare", str(two_runs["relu"])])
    assert code == 2 and "at least 2 run directories" in stderr
    code, _, stderr = run_cli(
        ["compare", str(two_runs["relu"]), str(two_runs["sigmoid"]), "-o", str(tmp_path / "c.svg")]
    )
    assert code == 2 and ".png" in stderr and not (tmp_path / "c.svg").exists()


def fake_run(folder, spec_name: str, accuracy: float, edit=None):
    """A finished run directory as `kbuilder train` leaves it (spec.yaml, metrics.json), without training."""
    import yaml

    from kbuilder.spec import load_spec
    from tests.conftest import REPO

    data = load_spec(REPO / "specs" / f"{spec_name}.yaml").data
    if edit:
        edit(data)
    folder.mkdir(parents=True)
    (folder / "spec.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    (folder / "metrics.json").write_text(json.dumps({"test_accuracy": accuracy, "test_loss": 0.1}))
    (folder / "history.json").write_text("[]")
    return folder


@pytest.fixture
def two_architectures(tmp_path):
    def tuned(data):  # best.yaml as tune writes it: no search, its own expect
        data.pop("search")
        data["expect"] = {"params": 1}

    return [
        fake_run(tmp_path / "mlp", "mnist_mlp", 0.9761),
        fake_run(tmp_path / "best", "mnist_mlp", 0.9801, tuned),
        fake_run(tmp_path / "lenet", "lenet5_modern", 0.9902),
    ]


def test_search_and_expect_are_ignored_and_architectures_summarized(two_architectures):
    from kbuilder.experiments.compare import compare_runs, notes

    mlp, best, lenet = two_architectures
    assert compare_runs([mlp, best]).settings == {}  # only search and expect differ
    comparison = compare_runs([mlp, lenet])
    assert not any(p.startswith(("search", "expect", "layers")) for p in comparison.settings)
    assert len(comparison.summarized) > 4
    assert comparison.architecture["params"] == [109386, 61706]
    assert comparison.architecture["MACs"][0] == 109184 and comparison.architecture["layers"][0] == 4
    assert "architecture differs" in notes(comparison)[0] and "--all" in notes(comparison)[0]
    everything = compare_runs([mlp, lenet], all_settings=True)
    assert not everything.summarized and any(p.startswith("layers.") for p in everything.settings)


def test_a_changed_width_shows_the_setting_and_the_figures_that_differ(tmp_path):
    from kbuilder.experiments.compare import compare_runs

    def wider(data):
        data["layers"][1]["dense"]["units"] = 256

    a = fake_run(tmp_path / "a", "mnist_mlp", 0.97)
    b = fake_run(tmp_path / "b", "mnist_mlp", 0.98, wider)
    comparison = compare_runs([a, b])
    assert list(comparison.settings) == ["layers.1.dense.units"] and not comparison.summarized
    assert set(comparison.architecture) == {"params", "MACs"}  # the layer count is the same


@pytest.mark.parametrize("columns", [80, 200])
def test_the_table_fits_the_terminal(two_architectures, monkeypatch, capsys, columns):
    from kbuilder.cli.app import main

    monkeypatch.setenv("COLUMNS", str(columns))
    for fmt in ("plain", "rich"):
        for extra in ([], ["--all"]):
            code = main(["compare", *map(str, two_architectures), "--format", fmt, *extra])
            stdout = capsys.readouterr().out
            assert code == 0
            lines = [line for line in stdout.splitlines() if line.strip()]
            assert max(len(line) for line in lines) <= columns, stdout
            assert "lenet" in stdout and "0.9902" in stdout and "61.7 k" in stdout
            assert "train.optimizer.learning_rate" in stdout  # setting names are never cut short
