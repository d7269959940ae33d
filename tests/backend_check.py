"""Run in a subprocess with KERAS_BACKEND set: build every bundled spec, check its
`expect`, train the small ones for one step, and export the trained EXPORT spec (SavedModel
+ .keras, verified). Prints one JSON line of results."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np


def random_batch(model, size: int = 2):
    rng = np.random.default_rng(0)
    arrays = []
    for tensor in model.inputs:
        shape = (size, *tensor.shape[1:])
        if "int" in str(tensor.dtype):
            arrays.append(rng.integers(0, 10, shape).astype(str(tensor.dtype)))
        else:
            arrays.append(rng.random(shape, dtype=np.float32))
    return arrays[0] if len(arrays) == 1 else arrays


# LeNet-5 has four of kbuilder's custom layers (C3's connection table, trainable
# subsampling, scaled tanh, the RBF output).
EXPORT = "lenet5"


def export_trained(built) -> dict:
    """The export's own check figures (it raises when an output differs by more than
    max(1e-5, 1e-5 x the sample's largest |output|)) and manifest facts."""
    from kbuilder import api

    with tempfile.TemporaryDirectory() as tmp:
        manifest = json.loads((api.export(built, Path(tmp) / "export") / "manifest.json").read_text())
    return {
        "check": manifest["check"],
        "keras_backend": manifest["keras_backend"],
        "trained_on_backend": manifest.get("trained_on_backend", manifest["keras_backend"]),
    }


def main(spec_paths: list[str], train: set[str]) -> None:
    import keras

    from kbuilder import api

    results = {"backend": keras.backend.backend(), "specs": {}}
    for path in spec_paths:
        built = api.build(path, weights=False)  # a fine-tuning spec names a run not trained here
        entry = {"params": built.model.count_params(), "differences": api.differences(built)}
        if Path(path).stem in train:
            model = built.model
            x = random_batch(model)
            y = np.zeros((2, *model.outputs[0].shape[1:]), dtype=np.float32)
            before = [np.array(w) for w in model.trainable_weights]
            model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
            loss = model.fit(x, y, epochs=1, batch_size=2, verbose=0).history["loss"][0]
            changed = any(not np.allclose(a, np.array(w)) for a, w in zip(before, model.trainable_weights))
            entry.update({"loss": float(loss), "weights_changed": bool(changed)})
            if Path(path).stem == EXPORT:
                entry["export"] = export_trained(built)
        results["specs"][Path(path).stem] = entry
    print(json.dumps(results))


if __name__ == "__main__":
    main(sys.argv[2:], set(sys.argv[1].split(",")))
