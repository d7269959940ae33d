"""Every full spec shown in README.md (a ```yaml block with `name:` and `layers:`) builds
and passes its `expect`, so the documentation cannot drift from the language."""

from __future__ import annotations

import re

import pytest

from kbuilder import api
from kbuilder.spec import loads_spec
from tests.conftest import REPO

BLOCKS = [
    block
    for block in re.findall(r"```yaml\n(.*?)```", (REPO / "README.md").read_text(), flags=re.DOTALL)
    if re.search(r"^name:", block, flags=re.MULTILINE) and re.search(r"^layers:", block, flags=re.MULTILINE)
]


def test_readme_has_examples():
    assert len(BLOCKS) >= 5


@pytest.mark.parametrize(
    "text", BLOCKS, ids=[re.search(r"^name: (\S+)", b, re.MULTILINE).group(1) for b in BLOCKS]
)
def test_readme_example_builds_and_checks(text):
    built = api.build(loads_spec(text, file="README.md"))
    assert api.differences(built) == []
