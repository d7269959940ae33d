"""Every command that builds or trains validates its spec before it imports Keras, so a bad
spec is refused (exit 2, located message) as fast as `kbuilder validate` refuses it."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO

# A field misspelt: refused by the schema.
UNKNOWN_FIELD = "name: m\ninputs: {x: {shape: [4]}}\nlayers:\n  - dense: {units: 3, activaton: relu}\n"
# Valid fields, impossible shapes: refused by the static shape check (`build` and `check` walk
# the spec's rules as the builder would, to print the table up to the failing layer).
TOO_SMALL = "name: m\ninputs: {x: {shape: [4, 4, 1]}}\nlayers:\n  - conv2d: {filters: 2, kernel_size: 5}\n"


def commands(spec: str, out: str) -> dict[str, list[str]]:
    return {
        "check": ["check", spec],
        "build": ["build", spec],
        "train": ["train", spec, "--out", f"{out}/run", "--no-export"],
        "tune": ["tune", spec, "--out", f"{out}/study"],
        "diagram": ["diagram", spec, "-o", f"{out}/m.svg"],
        "export": ["export", spec, f"{out}/export"],
        "ensemble": ["ensemble", spec, "--out", f"{out}/ensemble"],
    }


def refuse_in_one_process(runs: dict[str, list[str]]) -> dict[str, dict]:
    """Run each command in one fresh interpreter; its exit code and whether a framework loaded."""
    script = (
        "import contextlib, io, json, sys\n"
        "from kbuilder.cli.app import main\n"
        f"runs = {json.dumps(runs)}\n"
        "seen = {}\n"
        "for name, argv in runs.items():\n"
        "    err = io.StringIO()\n"
        "    with contextlib.redirect_stderr(err):\n"
        "        code = main(argv)\n"
        "    heavy = [m for m in ('tensorflow', 'keras', 'jax', 'torch') if m in sys.modules]\n"
        "    seen[name] = {'code': code, 'heavy': heavy, 'err': err.getvalue()}\n"
        "print(json.dumps(seen))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=300, check=True
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_a_bad_spec_is_refused_before_keras_by_every_command(tmp_path):
    spec = tmp_path / "bad.yaml"
    spec.write_text(UNKNOWN_FIELD)
    for name, seen in refuse_in_one_process(commands(str(spec), str(tmp_path))).items():
        assert seen["code"] == 2, (name, seen)
        assert seen["heavy"] == [], (name, seen)
        assert f"{spec}:4:23: layers[0].dense.activaton: unknown field 'activaton'" in seen["err"], name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml"]  # nothing written


def test_impossible_shapes_are_refused_before_keras_where_no_table_is_printed(tmp_path):
    spec = tmp_path / "small.yaml"
    spec.write_text(TOO_SMALL)
    runs = {k: v for k, v in commands(str(spec), str(tmp_path)).items() if k not in ("build", "check")}
    for name, seen in refuse_in_one_process(runs).items():
        assert seen["code"] == 2 and seen["heavy"] == [], (name, seen)
        assert "needs at least 5x5 input, gets 4x4" in seen["err"], name


def test_build_and_check_print_the_table_up_to_the_failing_layer_without_keras(tmp_path):
    spec = tmp_path / "small.yaml"
    spec.write_text(TOO_SMALL)
    runs = {k: v for k, v in commands(str(spec), str(tmp_path)).items() if k in ("build", "check")}
    for name, seen in refuse_in_one_process(runs).items():
        assert seen["code"] == 2 and seen["heavy"] == [], (name, seen)
        assert "needs at least 5x5 input, gets 4x4" in seen["err"], name
        assert "the table above shows every layer built before the failing one" in seen["err"], name
