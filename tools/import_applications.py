"""Import every keras.applications model (weights=None, offline) and check each spec against
its source: parameters, output shape and outputs with the weights copied by layer name.

    PYTHONPATH=. python tools/import_applications.py [--size 96] [NAME ...] > table.md

Prints the markdown table of docs/import.md (one row per model: exact or refused and why, Keras
layers against spec lines folded and flat, the runs folded of those found, the largest output
difference, seconds taken).
"""

from __future__ import annotations

import argparse
import sys
import time

from kbuilder.errors import KBuilderError
from kbuilder.importer.applications import application_names
from kbuilder.importer.convert import import_application
from kbuilder.importer.exactness import compare


def row(name: str, size: int | None) -> str:
    start = time.perf_counter()
    shape = (size, size, 3) if size else None
    try:
        imported = import_application(name, shape)
    except KBuilderError as exc:
        reason = str(exc).splitlines()[-1].split(": ", 1)[-1]
        return f"| {name} | refused: {reason} | | | | | {time.perf_counter() - start:.0f} |"
    result = compare(imported.text, imported.model)
    verdict = "exact" if result.exact else "DIFFERS"
    return (
        f"| {name} | {verdict} | {len(imported.layers)} | {imported.spec_lines} | {imported.flat_lines} | "
        f"{len(imported.folds)}/{len(imported.runs)} | {result.max_abs_diff:.1g} | "
        f"{time.perf_counter() - start:.0f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("names", nargs="*", help="models (default: every keras.applications model)")
    parser.add_argument("--size", type=int, default=96, help="input height and width (0: the model's own)")
    args = parser.parse_args()
    print(
        "| model | import | Keras layers | spec lines | flat spec lines | runs folded | max abs diff | seconds |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name in args.names or application_names():
        print(row(name, args.size or None), flush=True)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
