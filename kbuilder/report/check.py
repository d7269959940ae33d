"""Compare a Report with the spec's `expect` section and list every difference."""

from __future__ import annotations

from typing import Any

from kbuilder.errors import did_you_mean
from kbuilder.report.rows import Report
from kbuilder.spec.model import ExpectSpec


def _number(label: str, expected: int | None, actual: int) -> list[str]:
    if expected is None or expected == actual:
        return []
    return [f"{label}: expected {expected:,}, got {actual:,} ({actual - expected:+,})"]


def _shape_text(shape: Any) -> str:
    if shape and isinstance(shape[0], list):
        return ", ".join(_shape_text(s) for s in shape)
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + ")"


def _shape(label: str, expected: Any, actual: Any) -> list[str]:
    if expected is None or expected == actual:
        return []
    return [f"{label}: expected {_shape_text(expected)}, got {_shape_text(actual)}"]


def compare(report: Report, expect: ExpectSpec | None, aliases: dict[str, str] | None = None) -> list[str]:
    """Human-readable differences; empty when the model matches."""
    if expect is None:
        return []
    aliases = aliases or {}
    diffs = (
        _number("params", expect.params, report.params)
        + _number("trainable_params", expect.trainable_params, report.trainable_params)
        + _number("non_trainable_params", expect.non_trainable_params, report.non_trainable_params)
        + _number("macs", expect.macs, report.macs)
        + _shape("output_shape", expect.output_shape, report.output_shape)
    )
    rows = {row.name: row for row in report.rows}
    for name, want in expect.layers.items():
        target = name
        while target in aliases:
            target = aliases[target]
        row = rows.get(target)
        if row is None:
            diffs.append(
                f"layers.{name}: no layer of that name{did_you_mean(name, list(rows) + list(aliases))}"
            )
            continue
        diffs += _shape(f"layers.{name}.output_shape", want.output_shape, row.output_shape)
        if want.params is not None:
            # A composite's params are the sum over its layers.
            members = [r for r in report.rows if r.name == target or name in r.group]
            total = sum(r.params for r in members) if name in report.groups else row.params
            diffs += _number(f"layers.{name}.params", want.params, total)
    return diffs
