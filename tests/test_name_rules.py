"""The reference rules docs/spec-language.md states under "Names and references", checked on
the example written there: `inputs:` inside a block finds the block's own layers first and
outer names otherwise, a parameter may hold a layer name, and two entries may share a name
when their `when:` conditions exclude each other."""

from __future__ import annotations

import pytest

from kbuilder import api
from kbuilder.errors import SpecError
from kbuilder.graph import expand
from kbuilder.spec import loads_spec
from tests.conftest import REPO
from tests.test_readme import _full_specs

DOC = REPO / "docs" / "spec-language.md"
(WIRING,) = [block for block in _full_specs(DOC.read_text(encoding="utf-8")) if "name: wiring_rules" in block]


def graph(text: str, overrides: tuple[str, ...] = ()):
    return expand(loads_spec(text, file="wiring.yaml", overrides=overrides))


def test_a_block_finds_its_own_layers_first_and_outer_names_otherwise():
    nodes = {node.name: node for node in graph(WIRING).nodes}
    assert nodes["c1-join"].inputs == ["c1-conv", "stem"]  # own conv, not the outer conv
    assert nodes["c1-out"].inputs == ["c1-join", "both"]  # `both`: only the outer one exists


def test_a_parameter_holding_a_layer_name_is_resolved_from_inside_the_block():
    text = WIRING.replace("args: {skip: stem}", "args: {skip: conv}")
    nodes = {node.name: node for node in graph(text).nodes}
    assert nodes["c1-join"].inputs == ["c1-conv", "c1-conv"]  # the block's conv hides the outer one


@pytest.mark.parametrize(("pooling", "kind"), [("average", "average_pooling2d"), ("max", "max_pooling2d")])
def test_exclusive_entries_share_a_name(pooling, kind):
    built = api.build(loads_spec(WIRING, file="wiring.yaml", overrides=(f"params.pooling={pooling}",)))
    pool = next(node for node in built.graph.nodes if node.name == "pool")
    assert pool.kind == kind and api.differences(built) == []


def test_entries_sharing_a_name_both_present_are_refused():
    text = WIRING.replace("when: \"${pooling == 'max'}\"", "when: true")
    with pytest.raises(
        SpecError, match=r"wiring\.yaml:\d+:\d+: .*duplicate layer name 'pool' \(first used at line"
    ):
        graph(text)
