"""Compare the figures `kbuilder validate` computes from the spec alone (kbuilder.graph.figures:
output shapes, parameters with the trainable split, MACs, receptive fields) with the table
of the model Keras builds, for every bundled spec: prints, per spec, how many layers got
static figures and how many of those differ anywhere from the built table (must be 0).

    python tools/check_static_shapes.py [SPEC ...]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kbuilder import api  # after the path insert: this checkout's kbuilder
from kbuilder.graph.figures import static_figures


def compare(path: Path) -> tuple[int, int, int, list[str]]:
    report = api.report(api.build(path))
    figures = static_figures(api.validate(path))
    known = mismatched = 0
    notes = []
    for row in report.rows:
        static = figures.get(row.name)
        if static is None or static.shape is None or static.params is None:
            continue
        known += 1
        ours = (list(static.shape[1:]), static.params.total, static.params.trainable, static.macs)
        theirs = (row.output_shape, row.params, row.trainable_params, row.macs)
        if ours != theirs or static.receptive_field != row.receptive_field:
            mismatched += 1
            notes.append(f"{row.name} ({row.kind}): static {ours}, built {theirs}")
    return len(report.rows), known, mismatched, notes


def main(argv: list[str]) -> int:
    specs = [Path(a) for a in argv] or sorted((REPO / "specs").glob("*.yaml"))
    bad = 0
    for path in specs:
        start = time.perf_counter()
        total, known, mismatched, notes = compare(path)
        bad += mismatched
        print(
            f"{path.stem:24} {known:4}/{total:<4} layers with static figures, {mismatched} differ from Keras "
            f"({time.perf_counter() - start:.1f} s)"
        )
        for note in notes:
            print("    " + note)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
