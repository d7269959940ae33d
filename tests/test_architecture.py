"""The package's shape, checked by machine: no import cycles (imports inside functions
counted too), the light layers free of deep-learning frameworks, and few deferred imports.
import-linter (run by .ci/run) checks the layer order itself; this test computes the graph
from the source with tools/arch_metrics.py, so it also runs where import-linter is absent."""

from __future__ import annotations

import ast
import importlib.util
import sys

from tests.conftest import REPO

_spec = importlib.util.spec_from_file_location("arch_metrics", REPO / "tools" / "arch_metrics.py")
assert _spec and _spec.loader
arch = importlib.util.module_from_spec(_spec)
sys.modules["arch_metrics"] = arch
_spec.loader.exec_module(arch)

FRAMEWORKS = ("keras", "tensorflow", "jax", "torch")
LIGHT = ("kbuilder.errors", "kbuilder.storage", "kbuilder.zoo", "kbuilder.spec", "kbuilder.graph")


def test_no_import_cycles():
    modules = arch.scan(REPO)
    assert len(modules) > 100
    assert arch.cycles(arch.import_graph(modules)) == []


def test_the_cycle_finder_finds_cycles():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert arch.cycles(graph) == [["a", "b", "c"]]


def test_light_layers_never_import_a_framework():
    offenders = []
    for name, module in arch.scan(REPO).items():
        if not name.startswith(LIGHT):
            continue
        for node in ast.walk(ast.parse(module.path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            offenders += [f"{name}: {n}" for n in names if n.split(".")[0] in FRAMEWORKS]
    assert offenders == []


def _says_why(lines: list[str], lineno: int) -> bool:
    """The import on `lineno` (1-based) has a comment: on its line, or above it in the same
    group of imports (the group's comment)."""
    if "#" in lines[lineno - 1]:
        return True
    for line in reversed(lines[: lineno - 1]):
        text = line.strip()
        if text.startswith("#") or (text.startswith(("import ", "from ")) and "#" in text):
            return True
        if not text or text.startswith(("import ", "from ", "matplotlib.use(")):
            continue
        return False
    return False


def test_imports_are_deferred_only_in_the_cli_and_api_or_say_why():
    """Everywhere else imports sit at module top, so a module's dependencies are visible;
    the CLI and kbuilder.api defer Keras so that a spec is validated first. A deferral
    elsewhere (an optional extra, the one backend a run uses, Keras after the backend was
    chosen, matplotlib for a figure) says why in a comment."""
    silent = []
    for name, module in arch.scan(REPO).items():
        if not module.nested_imports or name.startswith(("kbuilder.cli", "kbuilder.api")):
            continue
        text = module.path.read_text()
        lines = text.split("\n")
        tree = ast.parse(text)
        parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
        for node in ast.walk(tree):
            deferred = isinstance(node, (ast.Import, ast.ImportFrom)) and arch._in_function(node, parents)
            if deferred and not _says_why(lines, node.lineno):
                silent.append(
                    f"{module.path.relative_to(REPO)}:{node.lineno}: {lines[node.lineno - 1].strip()}"
                )
    assert silent == [], "\n".join(silent)
