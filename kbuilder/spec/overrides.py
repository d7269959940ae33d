"""`--set dotted.path=value` overrides, applied to the raw data before validation.

Values are parsed as YAML scalars or flow collections (`3`, `0.1`, `[32, 32, 1]`,
`{l2: 0.0005}`), so an override is validated by exactly the same models as the file.
They come from the command line, which is as untrusted as the file: values go through
the same bounded loader (alias bombs, nesting, tags, number length), and key paths are
bounded in length and depth.
"""

import re
from collections.abc import Sequence
from typing import Any

from kbuilder.errors import Location, SpecError, did_you_mean
from kbuilder.spec.loader import MAX_DEPTH, MAX_NODES, PathTuple, SourceMap, format_path, parse_yaml

MAX_OVERRIDES = 1_000
MAX_KEY_CHARS = 1_000

_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def parse_override_path(text: str) -> PathTuple:
    """`layers[2].dense.units` -> ("layers", 2, "dense", "units")."""
    if len(text) > MAX_KEY_CHARS:
        raise ValueError(f"the key path has {len(text)} characters; the limit is {MAX_KEY_CHARS}")
    parts: list[str | int] = []
    pos = 0
    while pos < len(text):
        if text[pos] == ".":
            pos += 1
            continue
        match = _PART.match(text, pos)
        if not match:
            raise ValueError(f"cannot read the key path {text!r} at character {pos + 1}")
        parts.append(match.group(1) if match.group(1) is not None else int(match.group(2)))
        pos = match.end()
    if not parts:
        raise ValueError("the key path is empty")
    if len(parts) > MAX_DEPTH:
        raise ValueError(f"the key path is deeper than {MAX_DEPTH} levels")
    return tuple(parts)


def apply_overrides(data: Any, overrides: Sequence[str], source: SourceMap) -> Any:
    """Apply each `key=value` to `data` in place and note it in the source map."""
    if len(overrides) > MAX_OVERRIDES:
        raise SpecError.at(Location("--set"), f"{len(overrides)} overrides; the limit is {MAX_OVERRIDES}")
    budget = MAX_NODES  # shared by all overrides: a thousand alias bombs are one too many
    for item in overrides:
        where = Location(f"--set {item}")
        key, sep, raw_value = item.partition("=")
        if not sep or not key.strip():
            raise SpecError.at(where, "expected KEY=VALUE, for example train.epochs=3")
        try:
            path = parse_override_path(key.strip())
        except ValueError as exc:
            raise SpecError.at(where, f"cannot parse the override: {exc}") from None
        value, parsed = parse_yaml(raw_value, where.file, allow_empty=True, max_nodes=max(budget, 1))
        budget -= parsed.values
        path = _list_indices(data, path)
        _check_declared_param(data, path, where)
        _set_path(data, path, value, where)
        source.overridden[path] = item
    return data


def _check_declared_param(data: Any, path: PathTuple, where: Location) -> None:
    """`params.NAME` overrides a parameter the spec declares; a misspelt name would otherwise
    add a parameter nothing uses, and the run would silently keep the old value."""
    if len(path) < 2 or path[0] != "params" or not isinstance(data, dict):
        return
    params = data.get("params")
    declared: dict = params if isinstance(params, dict) else {}
    name = path[1]
    if name in declared:
        return
    if declared:
        names = sorted(map(str, declared))
        hint = did_you_mean(str(name), names)
        listed = "" if hint else f"; it declares {', '.join(names)}"
        raise SpecError.at(where, f"no parameter '{name}' in the spec's params{hint}{listed}")
    raise SpecError.at(
        where, f"the spec declares no parameters (top-level params), so there is no '{name}' to override"
    )


def _list_indices(data: Any, path: PathTuple) -> PathTuple:
    """`layers.1.dense` means `layers[1].dense` where `layers` is a list: the form a `search`
    section's keys take (YAML keys cannot hold brackets comfortably), accepted here too."""
    node, parts = data, []
    for part in path:
        if isinstance(node, list) and isinstance(part, str) and part.isdigit():
            part = int(part)
        parts.append(part)
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            node = None
    return tuple(parts)


def _set_path(data: Any, path: PathTuple, value: Any, where: Location) -> None:
    node = data
    for depth, part in enumerate(path[:-1]):
        nxt = path[depth + 1]
        if isinstance(part, int):
            if not isinstance(node, list) or part >= len(node):
                size = len(node) if isinstance(node, list) else 0
                raise SpecError.at(
                    where, f"{format_path(path[: depth + 1])}: no item {part} (the list has {size})"
                )
            node = node[part]
            continue
        if not isinstance(node, dict):
            raise SpecError.at(where, f"{format_path(path[:depth])} is not a mapping, cannot set '{part}'")
        if node.get(part) is None:
            node[part] = [] if isinstance(nxt, int) else {}
        node = node[part]
    last = path[-1]
    if isinstance(last, int):
        if not isinstance(node, list) or last >= len(node):
            raise SpecError.at(where, f"{format_path(path)}: no such list item")
        node[last] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise SpecError.at(where, f"{format_path(path[:-1])} is not a mapping, cannot set '{last}'")
