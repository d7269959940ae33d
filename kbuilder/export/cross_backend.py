"""Export a model trained on a backend that cannot write a SavedModel (PyTorch), or whose
ONNX/TFLite files TensorFlow must convert (JAX).

The `.keras` format does not depend on the backend, so the trained model is saved, reloaded
under TensorFlow in a subprocess (Keras picks its backend once per process) and exported
there with `kbuilder.export.export_model`. The subprocess first checks that TensorFlow's
copy reproduces the trained model's outputs on the export check batch, so the SavedModel is
verified against the model that was trained, not only against its reloaded copy.

    python -m kbuilder.export WORK_DIR   # what export_via_tensorflow runs (run_job)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np

from kbuilder.errors import RuntimeFailure
from kbuilder.export.check import check_batch, compare_outputs, flat_numpy, input_structure

TIMEOUT_SECONDS = 600
# The module the subprocess runs: kbuilder/export/__main__.py, which calls run_job.
SUBPROCESS_MODULE = "kbuilder.export"


def export_via_tensorflow(
    model: keras.Model,
    directory: str | os.PathLike[str],
    *,
    manifest: dict[str, Any],
    atol: float,
    rtol: float,
    formats: tuple[str, ...],
    quantize: str,
    calibration: list[np.ndarray] | None,
) -> Path:
    """Export `model` (any backend) as `kbuilder.export.export_model` would under TensorFlow."""
    manifest = {**manifest, "trained_on_backend": keras.backend.backend()}
    batch, _, arrays = check_batch(model)
    expected = flat_numpy(model(batch, training=False))
    with tempfile.TemporaryDirectory(prefix="kbuilder-export-") as work:
        work_dir = Path(work)
        model.save(str(work_dir / "model.keras"))
        named: dict[str, Any] = {
            **{f"input_{i}": a for i, a in enumerate(arrays)},
            **{f"output_{i}": e for i, e in enumerate(expected)},
            **{f"calibration_{i}": c for i, c in enumerate(calibration or [])},
        }
        np.savez(work_dir / "check.npz", **named)
        job = {
            "directory": str(Path(directory).resolve()),
            "manifest": manifest,
            "atol": atol,
            "rtol": rtol,
            "formats": list(formats),
            "quantize": quantize,
            "calibrated": calibration is not None,
            "backend": keras.backend.backend(),
            "inputs": len(arrays),
            "outputs": len(expected),
        }
        (work_dir / "job.json").write_text(json.dumps(job))
        env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
        try:
            done = subprocess.run(
                [sys.executable, "-m", SUBPROCESS_MODULE, str(work_dir)],
                check=False,  # its exit code and last line are reported below
                env=env,
                capture_output=True,
                text=True,
                timeout=TIMEOUT_SECONDS,
            )
        except subprocess.TimeoutExpired:
            raise RuntimeFailure(f"the TensorFlow export took more than {TIMEOUT_SECONDS} s") from None
        if done.returncode != 0:
            lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
            raise RuntimeFailure(
                "the TensorFlow export failed: " + (lines[-1] if lines else f"exit code {done.returncode}")
            )
    return Path(job["directory"])


def run_job(work_dir: Path, export: Callable[..., Path]) -> None:
    """In the subprocess: reload under TensorFlow, compare with the trained model, then
    `export` (kbuilder.export.export_model, passed in by the entry point so that this
    module does not import the package that imports it)."""
    job = json.loads((work_dir / "job.json").read_text())
    check = np.load(work_dir / "check.npz")
    model = keras.saving.load_model(work_dir / "model.keras", safe_mode=True)
    arrays = [check[f"input_{i}"] for i in range(job["inputs"])]
    batch = keras.tree.pack_sequence_as(input_structure(model), arrays)
    outputs = flat_numpy(model(batch, training=False))
    expected = [check[f"output_{i}"] for i in range(job["outputs"])]
    # The same rule as every export check (kbuilder.export.check): the two backends' kernels
    # sum in different orders, which the term relative to each sample's scale covers.
    _, _, problems = compare_outputs(
        f"the model reloaded under TensorFlow (from {job['backend']})",
        expected,
        outputs,
        atol=job["atol"],
        rtol=job["rtol"],
    )
    if problems:
        raise RuntimeFailure("; ".join(problems))
    calibration = [check[f"calibration_{i}"] for i in range(job["inputs"])] if job["calibrated"] else None
    export(
        model,
        job["directory"],
        manifest=job["manifest"],
        atol=job["atol"],
        rtol=job["rtol"],
        formats=job["formats"],
        quantize=job["quantize"],
        calibration=calibration,
    )
