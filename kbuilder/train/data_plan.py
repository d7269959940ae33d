"""What a run's arrays will cost in memory, priced from their headers before any is read.

A data file is untrusted: a 13 MB archive can declare gigabytes. Each array's header is read
(safe_arrays.py) and the run is refused (a DataError, exit 2) before any array is unpacked when
  - inputs and labels declare different sample counts, or an array has no sample axis;
  - everything the run will hold passes the memory bound (safe_arrays.memory_bound). Each array
    is counted as read, plus, for the rows the run uses (after `limit`, times `repeat` for the
    training set): a copy in its own dtype (a validation split or a resample takes one), a
    float32 copy (inputs and labels become float32: x4 for uint8) and one more float32 copy
    made by the preprocessing steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from kbuilder.errors import DataError
from kbuilder.train import safe_arrays
from kbuilder.train.safe_arrays import MEMORY_ENV, ArrayHeader, describe_size

FLOAT32_BYTES = 4


@dataclass(frozen=True)
class PlannedSplit:
    """The headers of one split's inputs and labels ("training", "test" or "validation")."""

    role: str
    x: ArrayHeader
    y: ArrayHeader


def held_bytes(header: ArrayHeader, rows_used: int, repeat: int) -> int:
    """The bytes one array costs the run: as read, and its copies for the rows used."""
    per_row = math.prod(header.shape[1:]) if header.shape else 1
    copies = header.dtype.itemsize + 2 * FLOAT32_BYTES
    return header.nbytes + rows_used * per_row * copies * repeat


def check_plan(planned: list[PlannedSplit], data) -> None:
    """Refuse from the headers alone: mismatched counts, no sample axis, or too much memory."""
    total, parts = 0, []
    for split in planned:
        for part, header in (("inputs", split.x), ("labels", split.y)):
            if not header.shape:
                raise DataError(
                    f"the {split.role} {part} ({header.where}) are a single scalar ({header.dtype}); "
                    "expected an array with one row per sample"
                )
        if split.x.rows != split.y.rows:
            raise DataError(
                f"the {split.role} inputs ({split.x.where}) declare {split.x.rows} samples but the labels "
                f"({split.y.where}) declare {split.y.rows}: give as many labels as inputs"
            )
        limit = {"training": data.limit, "test": data.test_limit}.get(split.role)
        rows = min(split.x.rows, limit) if limit else split.x.rows
        repeat = data.repeat if split.role == "training" else 1
        for header in (split.x, split.y):
            cost = held_bytes(header, rows, repeat)
            total += cost
            parts.append(f"{header.where}: {header.dtype} {header.shape} -> {describe_size(cost)}")
    bound = safe_arrays.memory_bound()  # looked up on the module: tests scale it down
    if total > bound:
        raise DataError(
            f"the data of this run would take about {describe_size(total)} in memory (each array as read, "
            f"its float32 copy and the copies preprocessing makes: {'; '.join(parts)}), more than the "
            f"{describe_size(bound)} kbuilder allows (half the machine's memory, or what is free now, or "
            f"${MEMORY_ENV}): use train.data.limit, fewer samples or a machine with more memory"
        )


__all__ = ["PlannedSplit", "check_plan", "held_bytes"]
