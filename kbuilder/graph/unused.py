"""Block parameters the block never uses: almost always a typo or a leftover, so the
expander reports them as located warnings (the spec still builds)."""

from __future__ import annotations

import re
from typing import Any

from kbuilder.errors import Problem
from kbuilder.spec.loader import PathTuple, SourceMap

_EXPRESSION = re.compile(r"\$\{([^{}]+)\}")
_IDENTIFIER = re.compile(r"[A-Za-z_]\w*")


def referenced_names(value: Any) -> set[str]:
    """Every name inside a `${...}` anywhere in `value` (nested layer lists, other blocks'
    arguments and `when:` conditions included)."""
    if isinstance(value, str):
        return {name for expr in _EXPRESSION.findall(value) for name in _IDENTIFIER.findall(expr)}
    if isinstance(value, dict):
        return set().union(*(referenced_names(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(referenced_names(v) for v in value)) if value else set()
    return set()


def unused_parameters(
    use, block, path: PathTuple, source: SourceMap, context: str = ""
) -> dict[tuple, Problem]:
    """Warnings for one block use: each argument the block's layers never mention (at the
    argument) and each such parameter of the block (at its definition), keyed by
    (location, message) so a block used many times warns once per place."""
    used = referenced_names(block.layers)
    problems = [
        Problem(
            source.locate(path + ("args", arg)),
            f"block '{use.use}' never uses its parameter '{arg}': this argument changes nothing",
            context,
        )
        for arg in use.args
        if arg not in used
    ] + [
        Problem(
            source.locate(("blocks", use.use, "params", param)),
            f"block '{use.use}' never uses its parameter '{param}'; use it as `${{{param}}}` or remove it",
        )
        for param in block.params
        if param not in used
    ]
    return {(p.location, p.message): p for p in problems}
