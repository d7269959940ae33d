"""The bundled fine-tuning spec (specs/lenet5_finetune_fashion.yaml) names the run it starts
from, `../runs/lenet5_modern`, which a fresh checkout does not have: its figures still check,
and what needs the weights stops at `weights.from` with the command that trains that run.
Each test copies the spec into tmp_path, so a run trained in the checkout changes nothing."""

from __future__ import annotations

import json
import shutil

import pytest

from kbuilder import api
from kbuilder.cli.app import main
from kbuilder.errors import SpecError
from tests.conftest import DATASETS, SPECS

SPEC = "lenet5_finetune_fashion.yaml"
TRAIN_FIRST = "kbuilder train lenet5_modern --out "


@pytest.fixture
def fresh(tmp_path, monkeypatch):
    """A checkout without runs/: the spec in tmp_path/specs, the working directory tmp_path."""
    (tmp_path / "specs").mkdir()
    for name in (SPEC, "lenet5_modern.yaml"):
        shutil.copy(SPECS / name, tmp_path / "specs" / name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_check_without_the_pretrained_run_checks_the_figures_and_says_how_to_make_it(fresh, capsys):
    code = main(["check", f"specs/{SPEC}"])
    out, err = capsys.readouterr()
    assert code == 0 and "expect: ok" in out
    assert "weights not checked" in err and f"specs/{SPEC}:" in err
    assert f"`{TRAIN_FIRST}runs/lenet5_modern`" in err


@pytest.mark.slow
def test_check_with_weights_asked_for_on_the_command_line_fails(fresh, capsys):
    code = main(["check", f"specs/{SPEC}", "--weights", "runs/nothing"])
    _, err = capsys.readouterr()
    assert code == 2 and "no such run or weights file" in err and "runs/nothing" in err


def test_train_without_the_pretrained_run_stops_at_weights_from_and_leaves_nothing(fresh):
    with pytest.raises(SpecError) as caught:
        api.train(fresh / "specs" / SPEC, data_dir=DATASETS, out=fresh / "runs" / "tuned", verbose=0)
    message = str(caught.value)
    assert f"{SPEC}:" in message and "weights.from" in message and "'../runs/lenet5_modern'" in message
    assert f"`{TRAIN_FIRST}runs/lenet5_modern`" in message
    assert not (fresh / "runs").exists()


@pytest.mark.slow
def test_build_without_the_pretrained_run_is_refused_at_weights_from(fresh):
    with pytest.raises(SpecError, match=r"lenet5_finetune_fashion\.yaml:\d+:\d+: weights\.from"):
        api.build(fresh / "specs" / SPEC)


@pytest.mark.slow
def test_the_spec_fine_tunes_a_tiny_pretrained_run_end_to_end(fresh):
    api.train(
        fresh / "specs" / "lenet5_modern.yaml",
        ["train.data.limit=256", "train.epochs=1"],
        data_dir=DATASETS,
        out=fresh / "runs" / "lenet5_modern",
        verbose=0,
        export=False,
    )
    phases = "[{name: head, epochs: 1}, {name: all, epochs: 1, unfreeze: all, learning_rate: 0.0001}]"
    result = api.train(
        fresh / "specs" / SPEC,
        ["train.data.limit=128", f"train.phases={phases}"],
        data_dir=DATASETS,
        out=fresh / "runs" / "tuned",
        verbose=0,
        export=False,
    )
    assert len(result.history) == 2 and 0.0 <= result.metrics["test_accuracy"] <= 1.0
    plan = json.loads((result.run_dir / "weights_plan.json").read_text())
    status = {row["layer"]: row["status"] for row in plan["layers"]}
    assert status == {"c1": "loaded", "c3": "loaded", "c5": "loaded", "f6": "loaded", "output": "new"}
    assert plan["source"].endswith("last.keras") or "lenet5_modern" in plan["source"]
