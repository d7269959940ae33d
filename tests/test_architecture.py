"""The package's shape, checked by machine: no import cycles (imports inside functions
counted too), the light layers free of deep-learning frameworks, and few deferred imports.
import-linter (run by .ci/run) checks the layer order itself; this test computes the graph
from the source with tools/arch_metrics.py, so it also runs where import-linter is absent."""

from __future__ import annotations

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
    import ast

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


def test_imports_are_deferred_only_in_the_cli_and_api():
    """Everywhere else imports sit at module top, so a module's dependencies are visible;
    the CLI and kbuilder.api defer Keras so that a spec is validated first. A deferral
    elsewhere must be an optional extra (ONNX, TFLite, a backend) and say why."""
    deferred = {
        name: module.nested_imports
        for name, module in arch.scan(REPO).items()
        if module.nested_imports and not name.startswith(("kbuilder.cli", "kbuilder.api"))
    }
    assert sum(deferred.values()) <= MAX_DEFERRED_ELSEWHERE, deferred


# Optional extras (tf2onnx, onnxruntime, ai_edge_litert, optuna_dashboard) and the one
# backend a run uses (jax or torch) are imported where they are needed.
MAX_DEFERRED_ELSEWHERE = 40
