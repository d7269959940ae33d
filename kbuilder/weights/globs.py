"""Layer-name globs for `weights.map`, `include` and `exclude`, with the captures a map passes on.

`fnmatch` tells whether a name matches; a map also needs what each wildcard matched, to fill
the source side's wildcards in turn: `conv*_x-block1-unit-conv*` matched by
`conv2_x-block1-unit-conv3` captures ("2", "3"), and `conv*_block1_*_conv` becomes
`conv2_block1_3_conv`.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from functools import lru_cache


@lru_cache(maxsize=1024)
def _capturing(pattern: str) -> re.Pattern[str]:
    """The glob as an anchored regex with one group per wildcard (`*`, `?`, `[...]`)."""
    parts, i = [], 0
    while i < len(pattern):
        char = pattern[i]
        if char == "*":
            parts.append("(.*?)")
        elif char == "?":
            parts.append("(.)")
        elif char == "[" and "]" in pattern[i + 2 :]:
            end = pattern.index("]", i + 2)
            body = pattern[i + 1 : end]  # the spec's Glob allows no backslash: the class is copied as is
            parts.append(f"([^{body[1:]}])" if body.startswith("!") else f"([{body}])")
            i = end
        else:
            parts.append(re.escape(char))
        i += 1
    return re.compile("".join(parts) + r"\Z")


def captures(pattern: str, name: str) -> tuple[str, ...] | None:
    """What each wildcard of `pattern` matched in `name`, or None when it does not match."""
    found = _capturing(pattern).match(name)
    return found.groups() if found else None


def fill(pattern: str, values: tuple[str, ...]) -> str:
    """`pattern` with its `*` and `?` replaced by `values` in turn (the rest stay wildcards)."""
    out, queue = [], list(values)
    for char in pattern:
        if char in "*?" and queue:
            out.append(queue.pop(0))
        else:
            out.append(char)
    return "".join(out)


def is_glob(pattern: str) -> bool:
    return any(char in pattern for char in "*?[")


def matches_any(names: Iterable[str], patterns: Iterable[str]) -> bool:
    """Whether one of `names` (a layer and its enclosing blocks) matches one of `patterns`."""
    patterns = list(patterns)
    return any(fnmatch.fnmatchcase(name, pattern) for name in names for pattern in patterns)
