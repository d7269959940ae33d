"""The documentation cannot drift from the language: every full spec shown in README.md or
docs/*.md (a ```yaml block with `name:` and `layers:`) builds and passes its `expect`, and
docs/layers.md is exactly what tools/gen_docs.py writes from the registry and the schema."""

from __future__ import annotations

import importlib.util
import re

import jsonschema
import pytest
import yaml

from kbuilder import api
from kbuilder.spec import loads_spec
from kbuilder.spec.schema import json_schema
from tests.conftest import REPO

DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def _full_specs(text: str) -> list[str]:
    return [
        block
        for block in re.findall(r"```yaml\n(.*?)```", text, flags=re.DOTALL)
        if re.search(r"^name:", block, flags=re.MULTILINE)
        and re.search(r"^layers:", block, flags=re.MULTILINE)
    ]


EXAMPLES = [
    (path.relative_to(REPO).as_posix(), block)
    for path in DOCUMENTS
    for block in _full_specs(path.read_text(encoding="utf-8"))
]


# One validator (jsonschema.validate would check the schema itself again for every example).
_SCHEMA = jsonschema.Draft202012Validator(json_schema())


def _example_id(file: str, block: str) -> str:
    return file + ":" + re.search(r"^name: (\S+)", block, re.MULTILINE).group(1)


def _load_gen_docs():
    spec = importlib.util.spec_from_file_location("gen_docs", REPO / "tools" / "gen_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_docs_have_examples():
    assert len(EXAMPLES) >= 5
    assert any(file == "README.md" for file, _ in EXAMPLES)


@pytest.mark.parametrize(
    ("file", "text"),
    EXAMPLES,
    ids=[_example_id(file, block) for file, block in EXAMPLES],
)
def test_doc_example_builds_and_checks(file, text):
    built = api.build(loads_spec(text, file=file))
    assert api.differences(built) == []


@pytest.mark.parametrize(
    ("file", "text"),
    EXAMPLES,
    ids=[_example_id(file, block) for file, block in EXAMPLES],
)
def test_doc_example_matches_the_json_schema(file, text):
    """What the documents show, an editor's YAML language server accepts (read as YAML 1.1,
    as editors read it: write `1.0e-6`, since `1e-6` is text there)."""
    _SCHEMA.validate(yaml.safe_load(text))


def test_layer_reference_is_generated():
    generated = _load_gen_docs().render()
    committed = (REPO / "docs" / "layers.md").read_text(encoding="utf-8")
    assert committed == generated, "docs/layers.md is out of date: run `python tools/gen_docs.py`"


def test_readme_test_command_is_what_ci_runs():
    ci_command = (REPO / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()[-1]
    quick_start = re.findall(
        r"```bash\n(.*?)\n```", (REPO / "README.md").read_text(encoding="utf-8"), re.DOTALL
    )
    assert ci_command in quick_start, "README's quick start must show .ci/run's command"


def _anchor(heading: str) -> str:
    """GitHub's id for a heading: lower case, punctuation dropped, spaces as '-'."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_links_between_documents_resolve():
    pages = [*DOCUMENTS, *sorted((REPO / "tools").glob("*.md"))]
    broken = []
    for page in pages:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text(encoding="utf-8")):
            if target.startswith(("http://", "https://")):
                continue
            file, _, anchor = target.partition("#")
            linked = (page.parent / file).resolve() if file else page
            if not linked.exists():
                broken.append(f"{page.relative_to(REPO)}: {target}")
            elif anchor and linked.suffix == ".md":
                headings = re.findall(r"^#+ (.+)$", linked.read_text(encoding="utf-8"), re.MULTILINE)
                if anchor not in {_anchor(h) for h in headings}:
                    broken.append(f"{page.relative_to(REPO)}: {target} (no such heading)")
    assert broken == []
