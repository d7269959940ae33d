"""Compare the static shapes `kbuilder validate` computes (kbuilder.graph.shapes) with the
shapes Keras builds, for every bundled spec: prints, per spec, how many layers got a
static shape and how many of those differ from Keras's (must be 0).

    python tools/check_static_shapes.py [SPEC ...]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def compare(path: Path) -> tuple[int, int, int, list[str]]:
    from kbuilder import api
    from kbuilder.graph.shapes import static_shapes

    built = api.build(path)
    shapes = static_shapes(api.validate(path))
    layers = {layer.name: layer for layer in built.model.layers}
    known = mismatched = 0
    notes = []
    for node in built.graph.nodes:
        shape = shapes.get(node.name)
        if shape is None:
            continue
        known += 1
        actual = tuple(layers[node.name].output.shape)
        if tuple(shape) != actual:
            mismatched += 1
            notes.append(f"{node.name} ({node.kind}): static {shape}, keras {actual}")
    return len(built.graph.nodes), known, mismatched, notes


def main(argv: list[str]) -> int:
    specs = [Path(a) for a in argv] or sorted((REPO / "specs").glob("*.yaml"))
    bad = 0
    for path in specs:
        start = time.perf_counter()
        total, known, mismatched, notes = compare(path)
        bad += mismatched
        print(
            f"{path.stem:24} {known:4}/{total:<4} layers with a static shape, {mismatched} differ from Keras "
            f"({time.perf_counter() - start:.1f} s)"
        )
        for note in notes:
            print("    " + note)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
