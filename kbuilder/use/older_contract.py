"""The input contract of a run trained before runs recorded one (metrics.json without
`data.input_contract`), rebuilt with training's own function (kbuilder.train.contract) from
the run's resolved spec and model.

A Keras data set's raw inputs are known (KERAS_RAW) and metrics.json kept the normalize
statistics training computed; any other source, or a run that kept no statistics, has its
training split loaded again (from `data_dir` where the source needs it) and preprocessed
as training did, which gives both the raw inputs and the statistics.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kbuilder.spec import LoadedSpec, load_spec
from kbuilder.storage import rundir as rd
from kbuilder.storage.run_reader import RunError
from kbuilder.train.classes import check_class_count, class_names
from kbuilder.train.compile import loss_section, outputs_logits
from kbuilder.train.contract import input_contract
from kbuilder.train.data import Splits, data_directory, load_splits
from kbuilder.train.preprocess import Statistics, preprocess_splits

# What Keras's data sets deliver: uint8 pixels of these shapes.
KERAS_RAW = {
    "mnist": [28, 28],
    "fashion_mnist": [28, 28],
    "cifar10": [32, 32, 3],
    "cifar100": [32, 32, 3],
}


def spec_dir_of(metrics: dict[str, Any] | None) -> Path | None:
    """Where the run's relative data paths start: beside the spec file it was trained from."""
    spec_file = (metrics or {}).get("spec_file")
    return Path(spec_file).parent if isinstance(spec_file, str) else None


def contract_of_older_run(
    run_dir: Path, metrics: dict[str, Any], model: Any, *, data_dir: str | Path | None = None
) -> dict[str, Any]:
    """The contract training would have recorded for the run in `run_dir`."""
    loaded = load_spec(run_dir / rd.SPEC_FILE)
    train = loaded.spec.train
    if train is None:
        raise RunError(f"{run_dir / rd.SPEC_FILE}: the resolved spec has no train section")
    data, loss = train.data, loss_section(train)
    width = model.outputs[0].shape[-1]
    recorded = list((metrics.get("data") or {}).get("normalize_statistics") or [])
    needed = sum(step.type == "normalize" for step in data.preprocess)
    source = data.source
    if source.type == "keras" and source.name in KERAS_RAW and len(recorded) >= needed:
        raw = {"dtype": "uint8", "shape": KERAS_RAW[source.name], "range": [0.0, 255.0]}
        statistics = Statistics(normalize=recorded, raw_input=raw)
    else:
        statistics = _training_statistics(loaded, spec_dir_of(metrics), data_dir, model)
    names = class_names(data, spec_dir=spec_dir_of(metrics))
    return input_contract(
        data,
        statistics,
        input_shape=tuple(model.inputs[0].shape[1:]),
        input_dtype=str(next(iter(loaded.spec.inputs.values())).dtype),
        output_shape=tuple(int(d) for d in model.outputs[0].shape[1:] if d is not None),
        loss_name=loss.name,
        logits=outputs_logits(model, loss),
        class_names=check_class_count(names, int(width) if width else None, given=data.classes is not None),
    )


def _training_statistics(
    loaded: LoadedSpec, spec_dir: Path | None, data_dir: str | Path | None, model: Any
) -> Statistics:
    """The raw inputs and normalize statistics of the run's training split, as training found them."""
    train = loaded.spec.train
    assert train is not None  # contract_of_older_run checked it
    splits = load_splits(
        train.data,
        spec_dir=spec_dir,
        data_dir=data_directory(data_dir),
        input_shape=tuple(model.inputs[0].shape[1:]),
        seed=train.seed,
    )
    width = model.outputs[0].shape[-1]
    _, statistics = preprocess_splits(
        Splits(splits.train, None, None, splits.origin),
        list(train.data.preprocess),
        num_classes=int(width) if width else None,
        loss_name=loss_section(train).name,
    )
    return statistics
