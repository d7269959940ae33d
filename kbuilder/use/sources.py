"""Which data an evaluation uses: the run's own test split, or another source (`--data`).

`--data` is a shorthand for `--set train.data.source=...`: a Keras data set name (mnist,
fashion_mnist, cifar10, cifar100), an .npz file (x_test/y_test when it has them, else
x_train/y_train) or an image folder (one sub-folder per class). Only `train.data.*` may be
overridden: the model itself is the trained one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from kbuilder.errors import UsageError
from kbuilder.train.data import KERAS_FILES, Arrays, data_directory, load_source
from kbuilder.train.data_checks import check_split
from kbuilder.use.source import TrainedModel


def data_overrides(data: str | None, overrides: Sequence[str] = ()) -> list[str]:
    """`--set` overrides for the evaluation data; UsageError for anything else or a bad --data."""
    for item in overrides:
        if not item.strip().startswith("train.data."):
            raise UsageError(
                f"--set {item}: an evaluation may change only train.data.* (the model is the trained one)"
            )
    if data is None:
        return list(overrides)
    path = Path(data)
    if data in KERAS_FILES:
        source: dict = {"type": "keras", "name": data}
    elif path.suffix == ".npz" and path.is_file():
        source = {"type": "npz", "path": str(path.resolve())}
    elif path.is_dir():
        source = {"type": "image_folder", "directory": str(path.resolve())}
    else:
        raise UsageError(
            f"--data {data}: expected a Keras data set name ({', '.join(KERAS_FILES)}), an existing .npz "
            "file or an image folder (one sub-folder per class)"
        )
    return [*overrides, f"train.data.source={json.dumps(source)}"]


def evaluation_set(
    trained: TrainedModel, *, data_dir: str | Path | None, whole: bool
) -> tuple[Arrays, str, str]:
    """(raw arrays, split, origin): the source's test split (limited as training limited it);
    with `whole`, a source without a test split is evaluated entire."""
    data = trained.train_spec.data
    train, test, origin = load_source(
        data.source,
        spec_dir=trained.spec_dir,
        data_dir=data_directory(data_dir),
        input_shape=tuple(trained.model.inputs[0].shape[1:]),
    )
    if test is not None:
        check_split("test", test)
        return test.head(data.test_limit), "test", origin
    if not whole:
        raise UsageError(
            f"the data source of {trained.run_dir} ({origin}) has no test split; "
            "evaluate on another source with --data SOURCE"
        )
    check_split("evaluation", train)
    return train, "all", origin
