"""What a box says beyond its name and kind, by `--detail` level, as netron shows a node:
the layer's main arguments (filters or units, kernel, stride, activation...) and its
parameter count. Arguments are read from the layer's spec, only those the spec sets
(defaults say nothing a reader of the spec does not know)."""

from __future__ import annotations

from typing import Any

from kbuilder.errors import UsageError, did_you_mean

DETAILS = ("minimal", "normal", "full")  # minimal: name, kind, shape (the boxes of old)
# The arguments `normal` shows, in this order, and the words it shows them by.
MAIN = {
    "filters": "filters",
    "units": "units",
    "num_heads": "heads",
    "kernel_size": "kernel",
    "pool_size": "pool",
    "strides": "stride",
    "dilation_rate": "dilation",
    "groups": "groups",
    "rate": "rate",
    "activation": "activation",
}
_WINDOWS = frozenset({"kernel_size", "pool_size", "strides", "dilation_rate"})
_NOT_ARGUMENTS = frozenset({"name", "inputs", "when", "trainable"})
_LONGEST = 40  # characters of one argument's value (an initializer's config can be long)


def check_detail(detail: str) -> str:
    if detail not in DETAILS:
        raise UsageError(
            f"--detail {detail}: not a detail level{did_you_mean(detail, DETAILS)}; choose one of {', '.join(DETAILS)}"
        )
    return detail


def _value(key: str, value: Any, kind: str) -> str:
    if key in _WINDOWS:
        dims = 3 if kind.endswith("3d") else 2 if kind.endswith("2d") else 1
        if isinstance(value, int) and dims > 1:
            value = [value] * dims
        if isinstance(value, (list, tuple)):
            return "×".join(str(v) for v in value)
    text = str(value)
    return text if len(text) <= _LONGEST else text[: _LONGEST - 1] + "…"


def arguments(spec: Any, kind: str, detail: str) -> list[str]:
    """The lines of arguments a box lists at `detail`: none at minimal; MAIN's on one line at
    normal (`filters 64, kernel 7×7, stride 2×2`); every argument the spec sets, one a line,
    at full."""
    if detail == "minimal" or not hasattr(spec, "model_dump"):
        return []
    given = spec.model_dump(exclude_defaults=True, exclude=set(_NOT_ARGUMENTS))
    given = {k: v for k, v in given.items() if v is not None}
    shown = [key for key in MAIN if key in given]
    if detail == "full":
        shown += sorted(key for key in given if key not in MAIN)
    # `activation relu` on an activation layer reads `relu`: the kind names the argument.
    parts = [
        _value(key, given[key], kind)
        if key == kind
        else f"{MAIN.get(key, key)} {_value(key, given[key], kind)}"
        for key in shown
    ]
    return parts if detail == "full" else [", ".join(parts)] if parts else []


def params_text(params: int | None) -> str:
    """`9,472 params`; nothing for a layer without weights or an unknown count."""
    return f"{params:,} params" if params else ""
