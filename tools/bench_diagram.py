"""What `kbuilder diagram` costs per stage, for the zoo's largest specs.

In one process (Keras imported once, as in a notebook) it times: expanding the spec
(no Keras), building the model for its shapes, and each output format's layout and
writing, for the full and the collapsed diagram. `kbuilder diagram` on the command line
adds a Python start and, with shapes, the Keras import (timed separately here).

    python tools/bench_diagram.py [resnet50 densenet121 ...] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def median_time(action, repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("specs", nargs="*", default=["resnet50", "densenet121", "googlenet", "vgg16"])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    from kbuilder import api
    from kbuilder.diagram import make_diagram
    from kbuilder.diagram.dot import to_dot
    from kbuilder.diagram.render import render, write_atomically

    start = time.perf_counter()
    import keras  # noqa: F401  (timed once: the price of shapes in a fresh process)

    print(f"import keras: {time.perf_counter() - start:.2f} s")
    print(
        "| spec | layers | boxes full / collapsed | expand | build (shapes) | svg | png | pdf | svg collapsed |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for name in args.specs:
            loaded = api.load(REPO / "specs" / f"{name}.yaml")
            expand_s = median_time(lambda loaded=loaded: api.validate(loaded), args.repeat)
            build_s = median_time(lambda loaded=loaded: api.build(loaded), args.repeat)
            graph = api.validate(loaded)
            full, collapsed = make_diagram(graph), make_diagram(graph, collapse=True)
            times = {}
            for fmt in ("svg", "png", "pdf"):
                target = Path(folder) / f"{name}.{fmt}"
                times[fmt] = median_time(
                    lambda target=target, full=full, fmt=fmt: write_atomically(
                        target, render(to_dot(full), fmt)
                    ),
                    args.repeat,
                )
            small = median_time(lambda collapsed=collapsed: render(to_dot(collapsed), "svg"), args.repeat)
            print(
                f"| {name} | {len(graph.nodes)} | {len(full.boxes)} / {len(collapsed.boxes)} | {expand_s:.2f} s "
                f"| {build_s:.2f} s | {times['svg']:.2f} s | {times['png']:.2f} s | {times['pdf']:.2f} s | {small:.2f} s |"
            )


if __name__ == "__main__":
    main()
