"""`python -m kbuilder.export WORK_DIR`: the TensorFlow side of a cross-backend export.

`kbuilder.export.cross_backend.export_via_tensorflow` runs this in a subprocess with
KERAS_BACKEND=tensorflow; a KBuilderError becomes one line on stderr and exit code 3,
which the parent reports.
"""

from __future__ import annotations

import sys
from pathlib import Path

import kbuilder.layers  # noqa: F401  registers the custom layers for loading the .keras file
from kbuilder.errors import KBuilderError
from kbuilder.export import export_model
from kbuilder.export.cross_backend import run_job

if __name__ == "__main__":
    try:
        run_job(Path(sys.argv[1]), export_model)
    except KBuilderError as error:
        print(f"{type(error).__name__}: {error}", file=sys.stderr)
        sys.exit(3)
