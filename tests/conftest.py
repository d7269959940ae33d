"""Shared test settings: quiet TensorFlow, paths to the repo and the shared data sets."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# What `kbuilder train` runs with (kbuilder.backend.prefer_onednn); set before any test imports TensorFlow.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

REPO = Path(__file__).resolve().parents[1]
SPECS = REPO / "specs"
DATASETS = (REPO.parent / "shared" / "datasets").resolve()
