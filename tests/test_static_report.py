"""`kbuilder build` and `check` print their tables from the spec's rules (kbuilder.build.static,
kbuilder.report.static) and must print exactly what the built Keras model gives: every cell
of every row, the totals, group subtotals and weight memory, the `expect` comparison, in
every format, and for a spec that fails, the same located error and the same table up to
the failing layer. Compared here on every bundled spec, every documented example and a few
hundred fuzzed specs (tools/fuzz_specs.py's mutations of the small bundled ones); and
`kbuilder build` of ResNet-50 runs without TensorFlow or Keras in the process.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from typing import Any

import pytest

import kbuilder.api as kb
from kbuilder.cli.app import main
from kbuilder.cli.build import render_partial
from kbuilder.errors import KBuilderError
from kbuilder.report import RENDERERS
from kbuilder.report.cross_check import report_differences
from kbuilder.spec import LoadedSpec, loads_spec
from kbuilder.spec.figures import Params
from kbuilder.spec.registry import all_kinds
from tests.conftest import REPO, SPECS
from tests.layer_examples import EXAMPLES as LAYER_EXAMPLES
from tests.layer_examples import Example
from tests.test_readme import EXAMPLES, _example_id
from tests.test_registry import spec_text

pytestmark = pytest.mark.slow

_tool = importlib.util.spec_from_file_location("fuzz_specs", REPO / "tools" / "fuzz_specs.py")
fuzz = importlib.util.module_from_spec(_tool)
sys.modules.setdefault("fuzz_specs", fuzz)  # dataclasses look their module up while the tool loads
_tool.loader.exec_module(fuzz)

FUZZED = 200  # fuzzed specs that validate, each compared both ways (about 1 in 4 candidates validates)
FUZZ_MAX_PARAMS = 2_000_000  # fuzzed widths stay small: wider models are refused by both ways alike


def outcome(model: Any) -> dict[str, Any]:
    """Everything `build` and `check` print of a measured model: the table in every format
    and the `expect` comparison."""
    rep = kb.report(model)
    return {
        "tables": {fmt: render(rep) for fmt, render in RENDERERS.items()},
        "expect": kb.differences(model, rep),
    }


def failure(exc: KBuilderError) -> dict[str, Any]:
    """What `build` prints of a failed build: the error and the table up to the failing layer."""
    tables = {fmt: render_partial(exc, fmt) for fmt in RENDERERS}
    return {"error": (type(exc).__name__, str(exc)), "tables": tables}


def both_ways(loaded: LoadedSpec, max_params: int | None = None) -> tuple[dict, dict] | None:
    """(from the spec's rules, from Keras); None when a layer is beyond the rules (the
    command then builds with Keras itself)."""
    try:
        static = kb.static(loaded, max_params=max_params)
        if not static.complete:
            return None
        ours = outcome(static)
    except KBuilderError as exc:
        ours = failure(exc)
    try:
        theirs = outcome(kb.build(loaded, max_params=max_params, weights=False))  # figures only
    except KBuilderError as exc:
        theirs = failure(exc)
    return ours, theirs


def assert_same(loaded: LoadedSpec, max_params: int | None = None) -> bool:
    """Both ways print the same; False when the rules could not tell every figure."""
    pair = both_ways(loaded, max_params)
    if pair is None:
        return False
    ours, theirs = pair
    if ours != theirs and "error" not in ours and "error" not in theirs:
        # Name the differing cells before the long dump.
        found = report_differences(kb.report(kb.static(loaded)), kb.report(kb.build(loaded, weights=False)))
        raise AssertionError(f"{loaded.file}: {found}")
    assert ours == theirs, loaded.file
    return True


BUNDLED = sorted(path.stem for path in SPECS.glob("*.yaml"))


@pytest.mark.parametrize("name", BUNDLED)
def test_every_bundled_spec_prints_the_same_both_ways(name):
    assert assert_same(kb.load(SPECS / f"{name}.yaml"))


@pytest.mark.parametrize(("file", "text"), EXAMPLES, ids=[_example_id(f, b) for f, b in EXAMPLES])
def test_every_documented_example_prints_the_same_both_ways(file, text):
    assert assert_same(loads_spec(text, file=file))


KINDS = sorted(k for k in all_kinds() if k != "input")
RANK_SHAPES = {2: [16], 3: [20, 6], 4: [12, 12, 6], 5: [6, 6, 6, 4]}  # without the batch axis


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_on_every_rank_prints_the_same_both_ways(kind):
    """A kind on a rank its Keras layer refuses fails alike (the rules know each kind's rank)."""
    example = LAYER_EXAMPLES[kind]
    for rank, shape in RANK_SHAPES.items():
        on_rank = (
            example
            if example.shapes and len(example.shapes[0]) + 1 == rank
            else Example(example.args, [shape] * max(len(example.shapes), 1), example.keras, example.dtype)
        )
        assert_same(loads_spec(spec_text(kind, on_rank), file=f"{kind}-rank{rank}.yaml"))


def test_failing_specs_print_the_same_error_and_partial_table_both_ways():
    too_small = (
        "name: m\ninputs: {x: {shape: [8, 8, 3]}}\nlayers:\n  - conv2d: {filters: 4, kernel_size: 3}\n"
    )
    too_small += "  - max_pooling2d: {pool_size: 2}\n  - conv2d: {filters: 4, kernel_size: 5}\n"
    too_wide = "name: w\ninputs: {x: {shape: [64, 64, 3]}}\nlayers:\n  - flatten: {}\n  - dense: 4096\n"
    projection = (
        "name: p\ninputs: {x: {shape: [9, 9, 4]}}\nlayers:\n"
        "  - residual:\n      shortcut: projection\n      layers:\n"
        "        - conv2d: {filters: 8, kernel_size: 3, strides: 2}\n"
    )
    for text, limit in ((too_small, None), (too_wide, 1_000_000), (projection, None)):
        loaded = loads_spec(text, file="bad.yaml")
        pair = both_ways(loaded, limit)
        assert pair is not None and "error" in pair[0], text
        assert pair[0] == pair[1], text
    assert pair[0]["tables"]["plain"][1]  # the table up to the failing layer is printed


def test_hundreds_of_fuzzed_specs_print_the_same_both_ways():
    small = [path for path in fuzz.SPEC_FILES if path.stem in fuzz.BUILDABLE]
    compared = beyond = number = 0
    while compared < FUZZED and number < 8 * FUZZED:
        case = fuzz.make_case(small[number % len(small)], number, 1, fuzz.BUILD_MUTATIONS)
        number += 1
        try:
            loaded = loads_spec(case.text, file=f"{case.spec}-fuzzed-{number}.yaml")
            kb.validate(loaded, shapes=False)
        except KBuilderError:
            continue  # refused before either way starts
        try:
            same = assert_same(loaded, FUZZ_MAX_PARAMS)
        except AssertionError as exc:
            raise AssertionError(f"case {number} [{'; '.join(case.mutations)}]: {exc}\n{case.text}") from None
        compared += same
        beyond += not same
    assert compared == FUZZED, (compared, beyond, number)


@pytest.mark.subprocess
def test_build_of_resnet50_prints_the_keras_table_without_keras():
    script = (
        "import contextlib, io, json, sys, time\n"
        "start = time.perf_counter()\n"
        "from kbuilder.cli.app import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        f"    code = main(['build', {str(SPECS / 'resnet50.yaml')!r}, '--format', 'plain'])\n"
        "heavy = [m for m in ('tensorflow', 'keras', 'jax', 'torch') if m in sys.modules]\n"
        "print(json.dumps({'code': code, 'heavy': heavy, 'out': out.getvalue(),"
        " 'seconds': time.perf_counter() - start}))\n"
    )
    # Without $COLUMNS (which pytest's process can hold below os.environ): the whole table.
    env = {key: value for key, value in os.environ.items() if key != "COLUMNS"}
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        check=True,
        env=env,
    )
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["code"] == 0 and seen["heavy"] == [], seen
    assert seen["seconds"] < 10  # about 0.5 s on an idle machine (tools/bench_build.md); generous
    assert seen["out"] == kb.table(kb.build(SPECS / "resnet50.yaml"), "plain")


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("command", ["build", "check"])
def test_the_commands_print_the_same_with_keras(capsys, command):
    spec = str(SPECS / "lenet5.yaml")
    for fmt in RENDERERS:
        static = run(capsys, command, spec, "--format", fmt)
        keras = run(capsys, command, spec, "--format", fmt, "--keras")
        assert static == keras and static[0] == 0, fmt


def test_keras_reports_where_the_rules_differ_from_the_built_model(capsys, monkeypatch):
    """The cross-check can fail: a rule that miscounts is named, exit 3."""
    from kbuilder.spec.layers.core import Dense

    spec = str(SPECS / "xor_mlp.yaml")
    monkeypatch.setattr(Dense, "params", lambda self, inputs: Params(1))
    code, out, err = run(capsys, "build", spec, "--keras", "--format", "plain")
    assert code == 3 and "Total params: 261" in out  # the table from the Keras model
    assert "the figures from the spec's rules differ from the model Keras built" in err
    assert "params: 4 (rules) != 261 (Keras)" in err
    code, out, _ = run(capsys, "check", spec, "--keras", "--format", "json")
    assert code == 3 and json.loads(out)["exit_code"] == 3


def test_a_layer_beyond_the_rules_makes_keras_build_the_table_saying_so_once(capsys, monkeypatch):
    from kbuilder.spec.layers.core import Dense

    spec = str(SPECS / "xor_mlp.yaml")
    expected = run(capsys, "build", spec, "--format", "plain")[1]
    monkeypatch.setattr(Dense, "output_shape", lambda self, inputs: None)  # as a kind without a rule
    code, out, err = run(capsys, "build", spec, "--format", "plain")
    assert code == 0 and out == expected
    assert err.count("beyond the spec's rules, so the table comes from the model Keras builds") == 1
    assert "layers[0].repeat.layers[0]: layer 'hidden-0-dense_0' (dense) on input (None, 2)" in err
    with pytest.warns(UserWarning, match="beyond the spec's rules"):
        assert kb.report(spec).params == 261
