"""kbuilder.api: a function for every command, and specs given as a path, a bundled name,
YAML text, a dict or a loaded spec."""

from __future__ import annotations

import pytest

import kbuilder.api as kb
from kbuilder.cli.app import COMMAND_MODULES
from kbuilder.errors import CheckFailed, SpecError, UsageError
from kbuilder.spec import loads_spec
from tests.conftest import SPECS

XOR_TEXT = (SPECS / "xor_mlp.yaml").read_text()
SMALL = {
    "name": "small",
    "inputs": {"x": {"shape": (4,)}},  # a tuple, as Python code writes it
    "layers": [{"dense": {"units": 3}}],
    "expect": {"params": 15},
}


def test_every_command_has_a_function():
    for command in COMMAND_MODULES:
        assert callable(getattr(kb, command)), command
    assert callable(kb.tune_report) and callable(kb.load) and callable(kb.table)


@pytest.mark.parametrize(
    "source",
    [SPECS / "xor_mlp.yaml", str(SPECS / "xor_mlp.yaml"), "xor_mlp", XOR_TEXT, loads_spec(XOR_TEXT)],
    ids=["path", "path-text", "bundled-name", "yaml-text", "loaded"],
)
def test_a_spec_from_any_source_validates_and_loads(source):
    assert kb.load(source).spec.name == "xor_mlp"
    assert [n.name for n in kb.validate(source).nodes][-1] == "out"


def test_build_and_check_take_a_bundled_name_text_and_a_dict():
    built = kb.build("xor_mlp")
    assert built.model.count_params() == 261
    assert kb.check(XOR_TEXT).params == 261  # from the spec's rules: no model built
    assert kb.check(built).params == 261 and kb.check(XOR_TEXT, keras=True).params == 261
    checked = kb.check(SMALL)
    assert checked.file == "<dict>" and checked.params == 15
    assert "Total params: 15" in kb.table(SMALL) and "Total params: 261" in kb.table(built)
    with pytest.raises(CheckFailed, match="params: expected 10, got 15"):
        kb.check(SMALL, ["expect.params=10"])


def test_report_table_and_check_from_a_spec_or_graph_need_no_model():
    loaded = kb.load("lenet5")
    static = kb.static(loaded)
    assert static.complete and static.figures["c1"].params.total == 156
    from_graph = kb.report(kb.validate(loaded))
    assert from_graph.params == kb.report(loaded).params == kb.report(static).params == 60840
    assert from_graph.file == loaded.file
    assert kb.differences(loaded) == [] and kb.check(static).trainable_params == 60000
    with pytest.raises(UsageError, match="a graph has no `expect`"):
        kb.differences(kb.validate(loaded))


def test_problems_in_text_and_dicts_are_located():
    with pytest.raises(
        SpecError, match=r"^<string>:3:19: layers\[0\]\.dense\.units: expected a value greater than 0"
    ):
        kb.validate("name: m\ninputs: {x: {shape: [4]}}\nlayers: [{dense: {units: 0}}]\n")
    bad = {**SMALL, "layers": [{"dense": {"unitz": 3}}]}
    with pytest.raises(SpecError, match=r"<dict>:\d+:\d+: layers\[0\]\.dense\.unitz: unknown field 'unitz'"):
        kb.validate(bad)


def test_sources_that_cannot_be_a_spec_are_usage_errors():
    with pytest.raises(UsageError, match="no such spec file: xor_mlp.yaml; to use the bundled spec"):
        kb.load("xor_mlp.yaml")
    with pytest.raises(UsageError, match="plain data only"):
        kb.load({**SMALL, "name": object()})
    with pytest.raises(UsageError, match="not a LoadedSpec"):
        kb.load(kb.load("xor_mlp"), ["train.epochs=1"])
    with pytest.raises(UsageError, match="read the spec from a file"):
        kb.tune(XOR_TEXT)


def test_schema_and_zoo():
    assert kb.schema()["title"] == "kbuilder model spec"
    assert "xor_mlp" in [entry.path.stem for entry in kb.zoo()]
