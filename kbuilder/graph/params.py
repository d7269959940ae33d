"""`${...}` parameter substitution in spec values (the expressions themselves:
kbuilder.graph.expressions).

`"${filters}"` alone becomes the parameter's value with its type (int, list, bool, None,
...); `"conv${i}"` inside other text becomes a string. A layer list nested in an entry
(a block's or repeat's `layers`) is left for its own scope.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from kbuilder.graph.bounds import ParamError, checked
from kbuilder.graph.expressions import ScopeFunction, evaluate

_WHOLE = re.compile(r"^\$\{([^{}]+)\}$")
_PART = re.compile(r"\$\{([^{}]+)\}")

__all__ = ["ParamError", "ScopeFunction", "evaluate", "mentions", "shallow_substitute", "substitute"]


def _whole_value(result: Any) -> Any:
    # 64 / 2 gives 32.0: an integral float becomes an int so it fits int fields (in lists too).
    if isinstance(result, float) and result.is_integer():
        return int(result)
    if isinstance(result, list):
        return [_whole_value(item) for item in result]
    return result


def substitute(value: Any, scope: Mapping[str, Any]) -> Any:
    """Replace `${...}` in every string inside `value` (dicts and lists recursively)."""
    if isinstance(value, str):
        whole = _WHOLE.match(value)
        if whole:
            return _whole_value(evaluate(whole.group(1), scope))
        if "${" in value:
            text = _PART.sub(lambda m: str(evaluate(m.group(1), scope)), value)
            return checked(text)
        return value
    if isinstance(value, dict):
        return {key: substitute(item, scope) for key, item in value.items()}
    if isinstance(value, list):
        return [substitute(item, scope) for item in value]
    return value


def shallow_substitute(entry: Any, scope: Mapping[str, Any], nested_keys: frozenset[str]) -> Any:
    """Substitute an entry's own arguments but not nested layer lists (they get their
    own scope when expanded: a block body must see the block's arguments, not ours)."""
    if not isinstance(entry, dict) or len(entry) != 1:
        return substitute(entry, scope)
    ((kind, args),) = entry.items()
    if not isinstance(args, dict):
        return {kind: substitute(args, scope)}
    # A nested layer list stays raw; a plain value there (`shortcut: ${shortcut}`) is ours.
    return {
        kind: {
            k: (v if k in nested_keys and isinstance(v, (list, dict)) else substitute(v, scope))
            for k, v in args.items()
        }
    }


def mentions(entry: Any, name: str, nested_keys: frozenset[str]) -> bool:
    """Whether an entry's own arguments use `name` inside a `${...}` expression."""
    pattern = re.compile(r"\$\{[^{}]*\b" + re.escape(name) + r"\b")

    def walk(value: Any) -> bool:
        if isinstance(value, str):
            return bool(pattern.search(value))
        if isinstance(value, dict):
            return any(walk(v) for v in value.values())
        if isinstance(value, list):
            return any(walk(v) for v in value)
        return False

    if isinstance(entry, dict) and len(entry) == 1:
        (args,) = entry.values()
        if isinstance(args, dict):
            return any(
                walk(v) for k, v in args.items() if not (k in nested_keys and isinstance(v, (list, dict)))
            )
    return walk(entry)
