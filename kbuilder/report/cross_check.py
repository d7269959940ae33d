"""Two reports of one spec compared cell by cell: the one from the spec's rules
(kbuilder.report.static) and the one from the built Keras model (kbuilder.report.rows).
`kbuilder build --keras` and `check --keras` list every difference (each a kbuilder bug);
the tests assert there are none."""

from __future__ import annotations

from kbuilder.report.rows import Report

_TOTALS = ("name", "file", "params", "trainable_params", "non_trainable_params", "macs", "weight_bytes")
_SHOWN = 8  # differences named one by one; the rest are counted


def report_differences(
    ours: Report, theirs: Report, labels: tuple[str, str] = ("rules", "Keras")
) -> list[str]:
    """Every cell where `ours` differs from `theirs`: totals, output shape, each row (by name,
    in order), each group summary, the warnings; empty when the reports are the same."""
    a, b = ours.as_json(), theirs.as_json()
    found = [
        f"{key}: {a[key]!r} ({labels[0]}) != {b[key]!r} ({labels[1]})"
        for key in (*_TOTALS, "output_shape", "warnings")
        if a[key] != b[key]
    ]
    rows_a, rows_b = a["layers"], b["layers"]
    if [r["name"] for r in rows_a] != [r["name"] for r in rows_b]:
        found.append(
            f"layers: {[r['name'] for r in rows_a]} ({labels[0]}) != {[r['name'] for r in rows_b]} ({labels[1]})"
        )
    for row_a, row_b in zip(rows_a, rows_b):
        for key, value in row_a.items():
            if row_b.get(key) != value:
                found.append(
                    f"layer '{row_a['name']}' {key}: {value!r} ({labels[0]}) != {row_b.get(key)!r} ({labels[1]})"
                )
    groups_b = {g["name"]: g for g in b["groups"]}
    for group in a["groups"]:
        other = groups_b.pop(group["name"], None)
        if other != group:
            found.append(f"group '{group['name']}': {group!r} ({labels[0]}) != {other!r} ({labels[1]})")
    found += [f"group '{name}': missing ({labels[0]})" for name in groups_b]
    if ours.groups != theirs.groups:
        found.append(
            f"group kinds and lines: {ours.groups!r} ({labels[0]}) != {theirs.groups!r} ({labels[1]})"
        )
    if len(found) > _SHOWN:
        found = [*found[:_SHOWN], f"... and {len(found) - _SHOWN} more"]
    return found
