"""Architecture figures of the `kbuilder` package, read from its source with `ast`.

    python tools/arch_metrics.py [--json]

Prints: modules, internal import edges (and how many sit inside functions), import
statements inside functions, import cycles between modules (counting imports inside
functions too), the largest functions and those with the most arguments. The test
`tests/test_architecture.py` uses `import_graph` and `cycles` to keep the package free
of cycles; the figures before and after the architecture rework are in `tools/arch_metrics.md`.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "kbuilder"


@dataclass
class Module:
    name: str
    path: Path
    imports: dict[str, bool] = field(default_factory=dict)  # target -> inside a function
    nested_imports: int = 0
    functions: list[tuple[str, int, int]] = field(default_factory=list)  # name, lines, args


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _known(target: str, names: set[str]) -> str | None:
    """The longest module of the package that `target` names (a module or a symbol in one)."""
    while target:
        if target in names:
            return target
        target = target.rpartition(".")[0]
    return None


def _in_function(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            return True
    return False


def _in_type_checking(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return True
    return False


def scan(root: Path = ROOT, include_tests: bool = False) -> dict[str, Module]:
    """Every module of the package with its internal imports and functions."""
    paths = [
        p for p in sorted((root / PACKAGE).rglob("*.py")) if include_tests or not p.name.endswith("_test.py")
    ]
    modules = {_module_name(p, root): Module(_module_name(p, root), p) for p in paths}
    names = set(modules)
    for mod in modules.values():
        tree = ast.parse(mod.path.read_text())
        parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
        is_package = mod.path.name == "__init__.py"
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                a = node.args
                count = len(a.posonlyargs) + len(a.args) + len(a.kwonlyargs)
                count -= bool(a.args and a.args[0].arg in ("self", "cls"))
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                mod.functions.append((node.name, lines, count))
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            if _in_type_checking(node, parents):
                continue
            nested = _in_function(node, parents)
            mod.nested_imports += nested
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = _resolve(node, mod.name, is_package)
                targets = [f"{base}.{alias.name}" for alias in node.names]
            for target in targets:
                found = _known(target, names)
                if found and found != mod.name:
                    mod.imports[found] = mod.imports.get(found, True) and nested
    return modules


def import_graph(modules: dict[str, Module]) -> dict[str, set[str]]:
    return {name: set(mod.imports) for name, mod in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]
    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def metrics(root: Path = ROOT) -> dict:
    modules = scan(root)
    edges = [(a, b, nested) for a, m in modules.items() for b, nested in m.imports.items()]
    functions = [
        (f"{m}.{name}", lines, args) for m, mod in modules.items() for name, lines, args in mod.functions
    ]
    return {
        "modules": len(modules),
        "internal_edges": len(edges),
        "edges_only_inside_functions": sum(nested for *_, nested in edges),
        "imports_inside_functions": sum(m.nested_imports for m in modules.values()),
        "cycles": cycles(import_graph(modules)),
        "largest_functions": sorted(functions, key=lambda f: -f[1])[:8],
        "most_arguments": sorted(functions, key=lambda f: -f[2])[:8],
        "functions_over_60_lines": sum(lines > 60 for _, lines, _ in functions),
        "functions_over_7_arguments": sum(args > 7 for *_, args in functions),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--root", type=Path, default=ROOT)
    args = parser.parse_args()
    result = metrics(args.root)
    if args.json:
        print(json.dumps(result, indent=1))
        return
    for key, value in result.items():
        if isinstance(value, list):
            print(f"{key}: {len(value)}")
            for item in value:
                print("   ", item)
        else:
            print(f"{key}: {value}")


if __name__ == "__main__":
    main()
