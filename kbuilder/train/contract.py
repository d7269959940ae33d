"""A trained model's input contract: what the data source delivered (dtype, shape, value range),
the preprocessing training applied to it with the statistics it computed, what the model
outputs (probabilities or logits), and the class names.

Training records it in metrics.json (`data.input_contract`) and in its export's manifest;
`kbuilder predict` and the export's `serving_raw` signature start from raw inputs with it.
Plain JSON data: the export package reads it without knowing the spec's types.
"""

from __future__ import annotations

from typing import Any

from kbuilder.train.preprocess import Statistics

INPUT_STEPS = ("rescale", "normalize", "pad", "resize", "add_channel_axis", "reshape")


def preprocess_record(steps: list, statistics: list[dict]) -> list[dict[str, Any]]:
    """The input steps as dicts, each normalize step with the mean and std it used."""
    recorded = iter(statistics)
    out = []
    for step in steps:
        if step.type not in INPUT_STEPS:
            continue  # one_hot acts on labels
        entry = step.model_dump()
        if step.type == "normalize":
            used = next(recorded, None)
            if used is not None:
                entry.update(mean=used["mean"], std=used["std"])
        out.append(entry)
    return out


def output_kind(loss_name: str, logits: bool) -> dict[str, Any]:
    """How outputs become probabilities: softmax/sigmoid when they are logits, else as they are."""
    squash = "sigmoid" if loss_name == "binary_crossentropy" else "softmax"
    return {"loss": loss_name, "logits": bool(logits), "to_probabilities": squash if logits else None}


def input_contract(
    data,
    statistics: Statistics,
    *,
    input_shape: tuple,
    input_dtype: str,
    output_shape: tuple,
    loss_name: str,
    logits: bool,
    class_names: list[str] | None,
) -> dict[str, Any]:
    """The contract of a model trained on `data` (a DataSpec) with these statistics."""
    raw = dict(statistics.raw_input or {})
    return {
        "raw_input": raw,
        "source": data.source.type
        + (
            f":{data.source.name}"
            if getattr(data.source, "name", None) and data.source.type == "keras"
            else ""
        ),
        "preprocess": preprocess_record(data.preprocess, statistics.normalize),
        "model_input": {"shape": [d for d in input_shape], "dtype": input_dtype},
        "output": {"shape": [d for d in output_shape], **output_kind(loss_name, logits)},
        "class_names": class_names,
    }
