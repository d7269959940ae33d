"""Shared test settings: quiet TensorFlow, paths to the repo and the shared data sets."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
SPECS = REPO / "specs"
DATASETS = (REPO.parent / "shared" / "datasets").resolve()
