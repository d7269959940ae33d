"""The ensemble as one Keras model: the members as named sub-models, their probabilities averaged.

    input -> member_0 (a trained run's model) -> [softmax when it outputs logits] -+
          -> member_1 ...                                                         +-> Average -> output
Members are loaded from their run's `last.keras` (the model its test figures describe) with
`safe_mode=True`; custom layers resolve only through kbuilder's own registered layers.

Keras (and kbuilder.layers, which imports it) is imported inside the functions: they run
after the ensemble chose its backend, and importing Keras fixes the backend.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from kbuilder.errors import KBuilderError, RuntimeFailure
from kbuilder.spec import load_spec
from kbuilder.storage import rundir as rd
from kbuilder.storage.run_reader import RunError
from kbuilder.train.compile import loss_section, outputs_logits
from kbuilder.train.safe_keras import load_keras_file


def load_member_model(run_dir: Path) -> Any:
    """A member's trained model; RuntimeFailure names the file when it cannot be read."""
    import kbuilder.layers  # noqa: F401  (registers kbuilder's custom layers with Keras's serializer)

    file = Path(run_dir) / rd.LAST_MODEL
    if not file.is_file():
        raise RunError(
            f"{run_dir}: the run has no {rd.LAST_MODEL} (a finished `kbuilder train` run saves it)"
        )
    try:
        # A member's file is untrusted like any run's: its config may name only Keras's
        # built-in classes and kbuilder's layers (no Lambda, no foreign module).
        return load_keras_file(file, compile=False)
    except KBuilderError:
        raise
    except Exception as exc:  # noqa: BLE001  (a corrupt or foreign file fails in many ways inside Keras)
        raise RuntimeFailure(
            f"cannot load {file}: {type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        ) from None


def squash_activation(loss_name: str) -> str:
    return "sigmoid" if loss_name == "binary_crossentropy" else "softmax"


def build_ensemble_model(
    models: list[Any], logits: list[bool], *, loss_name: str, input_name: str, name: str
) -> Any:
    """One functional model: every member under the name member_<k>, outputs averaged."""
    import keras  # after the members' runs chose the backend

    first = models[0]
    shape = tuple(first.inputs[0].shape[1:])
    dtype = first.inputs[0].dtype
    inputs = keras.Input(shape=shape, dtype=dtype, name=input_name)
    probabilities = []
    for index, (member, is_logits) in enumerate(zip(models, logits)):
        member.name = f"member_{index}"  # distinct names: the members' own layer names repeat
        output = member(inputs)
        if is_logits:
            output = keras.layers.Activation(
                squash_activation(loss_name), name=f"member_{index}_probabilities"
            )(output)
        probabilities.append(output)
    averaged = keras.layers.Average(name="average")(probabilities)
    return keras.Model(inputs, averaged, name=f"{name}_ensemble")


def predict(model: Any, x: Any, batch_size: int) -> Any:
    """Outputs for every sample, batch by batch (a direct call: no per-model retracing of predict)."""
    import keras  # after the members' runs chose the backend

    parts = [
        keras.ops.convert_to_numpy(model(x[start : start + batch_size], training=False))
        for start in range(0, len(x), batch_size)
    ]
    return np.concatenate(parts).astype("float64")


def ensemble_of_runs(members: list[Path]) -> Any:
    """The averaged model of finished member runs (an ensemble kept without its export,
    `kbuilder ensemble --no-export`), built as `kbuilder ensemble` builds it."""
    models = [load_member_model(member) for member in members]
    loaded = load_spec(Path(members[0]) / rd.SPEC_FILE)
    if loaded.spec.train is None:
        raise RunError(f"{members[0] / rd.SPEC_FILE}: the member's spec has no train section")
    loss = loss_section(loaded.spec.train)
    name = str(models[0].inputs[0].name).split(":")[0] or "input"
    return build_ensemble_model(
        models,
        [outputs_logits(m, loss) for m in models],
        loss_name=loss.name,
        input_name=name,
        name=loaded.spec.name,
    )
