"""Export a model trained on a backend that cannot write a SavedModel (PyTorch).

The `.keras` format does not depend on the backend, so the trained model is saved, reloaded
under TensorFlow in a subprocess (Keras picks its backend once per process) and exported
there with `kbuilder.export.export_model`. The subprocess first checks that TensorFlow's
copy reproduces the trained model's outputs on the export check batch, so the SavedModel is
verified against the model that was trained, not only against its reloaded copy.

    python -m kbuilder.cross_export WORK_DIR   # what export_via_tensorflow runs
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from kbuilder.errors import KBuilderError, RuntimeFailure

TIMEOUT_SECONDS = 600


def export_via_tensorflow(
    model: Any,
    directory: str | os.PathLike,
    *,
    manifest: dict[str, Any],
    atol: float,
    rtol: float,
    formats: tuple[str, ...],
    quantize: str,
    calibration: list[Any] | None,
) -> Path:
    """Export `model` (any backend) as `kbuilder.export.export_model` would under TensorFlow."""
    import keras
    import numpy as np

    from kbuilder.export_check import check_batch, flat_numpy

    manifest = {**manifest, "trained_on_backend": keras.backend.backend()}
    batch, _, arrays = check_batch(model)
    expected = flat_numpy(model(batch, training=False))
    with tempfile.TemporaryDirectory(prefix="kbuilder-export-") as work:
        work_dir = Path(work)
        model.save(str(work_dir / "model.keras"))
        np.savez(
            work_dir / "check.npz",
            **{f"input_{i}": a for i, a in enumerate(arrays)},
            **{f"output_{i}": e for i, e in enumerate(expected)},
            **{f"calibration_{i}": c for i, c in enumerate(calibration or [])},
        )
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
                [sys.executable, "-m", "kbuilder.cross_export", str(work_dir)],
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


def _run(work_dir: Path) -> None:
    """In the subprocess: reload under TensorFlow, compare with the trained model, export."""
    import keras
    import numpy as np

    import kbuilder.layers  # noqa: F401  registers the custom layers for loading
    from kbuilder.export import export_model
    from kbuilder.export_check import compare_outputs, flat_numpy, input_structure

    job = json.loads((work_dir / "job.json").read_text())
    check = np.load(work_dir / "check.npz")
    model = keras.saving.load_model(work_dir / "model.keras", safe_mode=True)
    arrays = [check[f"input_{i}"] for i in range(job["inputs"])]
    batch = keras.tree.pack_sequence_as(input_structure(model), arrays)
    outputs = flat_numpy(model(batch, training=False))
    expected = [check[f"output_{i}"] for i in range(job["outputs"])]
    # The same rule as every export check (kbuilder.export_check): the two backends' kernels
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
    export_model(
        model,
        job["directory"],
        manifest=job["manifest"],
        atol=job["atol"],
        rtol=job["rtol"],
        formats=job["formats"],
        quantize=job["quantize"],
        calibration=calibration,
    )


if __name__ == "__main__":
    try:
        _run(Path(sys.argv[1]))
    except KBuilderError as error:
        print(f"{type(error).__name__}: {error}", file=sys.stderr)
        sys.exit(3)
