"""Loading the training, validation and test arrays of a spec's `train.data` section.

Everything is loaded into memory as numpy arrays: the notes' data sets are small, and
in-memory arrays are what makes the fast input pipelines possible (see pipeline.py).
This module imports no Keras: only Keras's data sets and image folders need it (imported
there), and the experiments and the TFLite calibration use Arrays, Splits and the loaders.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kbuilder.backend import tensorflow_available
from kbuilder.errors import DataError
from kbuilder.train.data_checks import check_image_folder, check_split
from kbuilder.train.data_plan import PlannedSplit, check_plan
from kbuilder.train.safe_arrays import NpzArchive, npy_header, read_npy

DATA_DIR_ENV = "KBUILDER_DATA_DIR"
# File names a data directory may hold for each Keras data set (Keras's own first).
KERAS_FILES = {
    "mnist": ("mnist.npz",),
    "fashion_mnist": ("fashion-mnist.npz", "fashion_mnist.npz"),
    "cifar10": ("cifar10.npz", "cifar-10.npz"),
    "cifar100": ("cifar100.npz", "cifar-100.npz"),
}


@dataclass
class Arrays:
    """Inputs and labels of one split."""

    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return len(self.x)

    def head(self, limit: int | None) -> Arrays:
        return self if limit is None else Arrays(self.x[:limit], self.y[:limit])

    def take(self, indices: np.ndarray) -> Arrays:
        return Arrays(self.x[indices], self.y[indices])


@dataclass
class Splits:
    """The three splits; validation and test may be absent."""

    train: Arrays
    validation: Arrays | None
    test: Arrays | None
    origin: str  # where the data came from, for metrics.json


def data_directory(option: str | os.PathLike | None) -> Path | None:
    """--data-dir, else $KBUILDER_DATA_DIR, else None."""
    chosen = option or os.environ.get(DATA_DIR_ENV)
    return Path(chosen).expanduser() if chosen else None


def resolve_path(text: str, spec_dir: Path | None) -> Path:
    """A relative path is looked up in the current directory, then beside the spec."""
    path = Path(text).expanduser()
    if path.is_absolute() or path.exists() or spec_dir is None:
        return path
    beside = spec_dir / path
    return beside if beside.exists() else path


def _labels(y: np.ndarray) -> np.ndarray:
    """Class ids shaped [N, 1] (CIFAR) become [N] so sparse losses and one-hot see one id per sample."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1 and np.issubdtype(y.dtype, np.integer):
        return y[:, 0]
    return y


def _open_npz(path: Path, keys: tuple[str, str]) -> NpzArchive:
    if not path.exists():
        raise DataError(f"no such data file: {path}")
    archive = NpzArchive(path)
    missing = [k for k in keys if k not in archive]
    if missing:
        archive.__exit__()
        raise DataError(
            f"{path} has no array {missing[0]!r} (it has {', '.join(archive.files) or 'no arrays'})"
        )
    return archive


def _npz_headers(
    path: Path, keys: tuple[str, str], test_keys: tuple[str | None, str | None]
) -> list[PlannedSplit]:
    with _open_npz(path, keys) as archive:
        planned = [PlannedSplit("training", archive.header(keys[0]), archive.header(keys[1]))]
        x_key, y_key = test_keys
        if x_key is not None and y_key is not None and x_key in archive and y_key in archive:
            planned.append(PlannedSplit("test", archive.header(x_key), archive.header(y_key)))
    return planned


def _read_npz(
    path: Path, keys: tuple[str, str], test_keys: tuple[str | None, str | None]
) -> tuple[Arrays, Arrays | None]:
    with _open_npz(path, keys) as archive:
        train = Arrays(archive.read(keys[0]), _labels(archive.read(keys[1])))
        test = None
        x_key, y_key = test_keys
        if x_key is not None and y_key is not None and x_key in archive and y_key in archive:
            test = Arrays(archive.read(x_key), _labels(archive.read(y_key)))
    return train, test


def _read_npy(path: Path) -> np.ndarray:
    return read_npy(path)


def _keras_file(source, data_dir: Path | None) -> tuple[Path, tuple[str, str]] | None:
    """The data directory's copy of a Keras data set and its label keys, if there is one."""
    if data_dir is not None:
        for name in KERAS_FILES[source.name]:
            candidate = data_dir / name
            if candidate.is_file():
                coarse = source.name == "cifar100" and source.label_mode == "coarse"
                return candidate, ("y_train_coarse", "y_test_coarse") if coarse else ("y_train", "y_test")
    return None


def _keras_dataset(source, data_dir: Path | None) -> tuple[Arrays, Arrays | None, str]:
    found = _keras_file(source, data_dir)
    if found is not None:
        candidate, y_keys = found
        train, test = _read_npz(candidate, ("x_train", y_keys[0]), ("x_test", y_keys[1]))
        return train, test, str(candidate)
    import keras  # deferred: see the module's docstring

    loader = getattr(keras.datasets, source.name)
    kwargs = {"label_mode": source.label_mode} if source.name == "cifar100" else {}
    try:
        (x_train, y_train), (x_test, y_test) = loader.load_data(**kwargs)
    except Exception as exc:  # noqa: BLE001  (downloads fail in many ways: offline, proxy, disk)
        where = f" (looked for {', '.join(KERAS_FILES[source.name])} in {data_dir})" if data_dir else ""
        raise DataError(
            f"cannot load the {source.name} data set through keras.datasets: {type(exc).__name__}: {exc}{where}. "
            f"Offline, put {KERAS_FILES[source.name][0]} in a folder and pass --data-dir or set {DATA_DIR_ENV}."
        ) from None
    return Arrays(x_train, _labels(y_train)), Arrays(x_test, _labels(y_test)), f"keras.datasets.{source.name}"


def _image_folder(source, spec_dir: Path | None, input_shape: tuple) -> tuple[Arrays, Arrays | None, str]:
    if not tensorflow_available():
        raise DataError(
            "image folders are read with TensorFlow (keras.utils.image_dataset_from_directory), which is not installed"
        )
    import keras  # deferred: see the module's docstring

    size = source.image_size or [int(d) for d in input_shape[:2] if d is not None]
    if len(size) != 2:
        raise DataError(
            f"set train.data.source.image_size: the model input {tuple(input_shape)} does not give [height, width]"
        )
    channels = input_shape[-1] if len(input_shape) == 3 else 3
    color_mode = source.color_mode or {1: "grayscale", 3: "rgb", 4: "rgba"}.get(channels, "rgb")

    def read(directory: str) -> Arrays:
        path = resolve_path(directory, spec_dir)
        if not path.is_dir():
            raise DataError(f"no such image folder: {path}")
        check_image_folder(path)
        import tensorflow as tf  # deferred: only image folders need TensorFlow

        try:
            dataset = keras.utils.image_dataset_from_directory(
                str(path),
                image_size=tuple(size),
                color_mode=color_mode,
                batch_size=256,
                shuffle=False,
                verbose=False,
            )
            xs, ys = (
                zip(*[(np.asarray(x), np.asarray(y)) for x, y in dataset])
                if dataset.cardinality()
                else ((), ())
            )
        except (tf.errors.OpError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DataError(f"cannot read the images in {path}: {first}") from None
        if not xs:
            raise DataError(f"no images found in {path}")
        return Arrays(np.concatenate(xs), np.concatenate(ys))

    test = read(source.test_directory) if source.test_directory else None
    return read(source.directory), test, str(resolve_path(source.directory, spec_dir))


def source_headers(source, *, spec_dir: Path | None, data_dir: Path | None) -> list[PlannedSplit]:
    """The headers of the arrays a source will read (none for Keras downloads, image folders and
    inline lists: those are not untrusted files of arbitrary size)."""
    if source.type == "keras":
        found = _keras_file(source, data_dir)
        if found is None:
            return []
        path, y_keys = found
        return _npz_headers(path, ("x_train", y_keys[0]), ("x_test", y_keys[1]))
    if source.type == "npz":
        path = resolve_path(source.path, spec_dir)
        return _npz_headers(path, (source.x_key, source.y_key), (source.test_x_key, source.test_y_key))
    if source.type == "npy":
        pairs = [("training", source.x, source.y)] + (
            [("test", source.test_x, source.test_y)] if source.test_x else []
        )
        return [
            PlannedSplit(role, npy_header(resolve_path(x, spec_dir)), npy_header(resolve_path(y, spec_dir)))
            for role, x, y in pairs
        ]
    return []


def load_source(
    source, *, spec_dir: Path | None, data_dir: Path | None, input_shape: tuple
) -> tuple[Arrays, Arrays | None, str]:
    """(train, test or None, origin) of one data source."""
    if source.type == "keras":
        return _keras_dataset(source, data_dir)
    if source.type == "npz":
        path = resolve_path(source.path, spec_dir)
        train, test = _read_npz(path, (source.x_key, source.y_key), (source.test_x_key, source.test_y_key))
        return train, test, str(path)
    if source.type == "npy":
        train = Arrays(
            _read_npy(resolve_path(source.x, spec_dir)), _labels(_read_npy(resolve_path(source.y, spec_dir)))
        )
        test = None
        if source.test_x:
            test = Arrays(
                _read_npy(resolve_path(source.test_x, spec_dir)),
                _labels(_read_npy(resolve_path(source.test_y, spec_dir))),
            )
        return train, test, str(resolve_path(source.x, spec_dir))
    if source.type == "image_folder":
        return _image_folder(source, spec_dir, input_shape)
    test = _inline(source.test_x, source.test_y) if source.test_x is not None else None
    return _inline(source.x, source.y), test, "inline"


def _inline(x_values, y_values) -> Arrays:
    try:
        x = np.asarray(x_values, dtype="float32")
        y = np.asarray(y_values)
    except ValueError as exc:
        raise DataError(
            f"train.data.source: inline arrays must be rectangular lists of numbers ({exc})"
        ) from None
    if not np.issubdtype(y.dtype, np.number):
        raise DataError("train.data.source: labels must be numbers")
    return Arrays(x, y)


def check_data_files(data, *, spec_dir: Path | None, data_dir: Path | None) -> None:
    """The data files' headers checked and priced (data_plan.py): before Keras loads, a data
    bomb or a label-count mismatch is refused in a fraction of a second."""
    planned = source_headers(data.source, spec_dir=spec_dir, data_dir=data_dir)
    if data.validation.type == "source":
        planned += [
            PlannedSplit("validation", split.x, split.y)
            for split in source_headers(data.validation.source, spec_dir=spec_dir, data_dir=data_dir)[:1]
        ]
    check_plan(planned, data)


def load_splits(
    data, *, spec_dir: Path | None, data_dir: Path | None, input_shape: tuple, seed: int | None
) -> Splits:
    """Train/validation/test arrays as the spec asks (before preprocessing); the files' headers
    are checked and priced first (data_plan.py), so a data bomb is refused before it unpacks."""
    check_data_files(data, spec_dir=spec_dir, data_dir=data_dir)
    train, test, origin = load_source(
        data.source, spec_dir=spec_dir, data_dir=data_dir, input_shape=input_shape
    )
    check_split("training", train)
    if test is not None:
        check_split("test", test)
    train = train.head(data.limit)
    test = test.head(data.test_limit) if (test is not None and data.evaluate_test) else None
    validation: Arrays | None = None
    kind = data.validation.type
    if kind == "split":
        order = np.random.default_rng(seed).permutation(len(train))
        held = max(1, round(len(train) * data.validation.fraction))
        if held >= len(train):
            raise DataError(
                f"a validation fraction of {data.validation.fraction} leaves no training data out of {len(train)} samples"
            )
        validation, train = train.take(np.sort(order[:held])), train.take(np.sort(order[held:]))
    elif kind == "test":
        if test is None:
            raise DataError(
                "train.data.validation is 'test' but the data source has no test set (or evaluate_test is false)"
            )
        validation = test
    elif kind == "source":
        validation, _, _ = load_source(
            data.validation.source, spec_dir=spec_dir, data_dir=data_dir, input_shape=input_shape
        )
        check_split("validation", validation)
    for name, arrays in (("training", train), ("validation", validation), ("test", test)):
        if arrays is not None and len(arrays) == 0:
            raise DataError(f"the {name} set is empty")
    if data.bootstrap is not None:  # bagging: a resample of the training set (after the validation split)
        train = train.take(np.random.default_rng(data.bootstrap).integers(0, len(train), size=len(train)))
    if data.repeat > 1:
        train = Arrays(np.concatenate([train.x] * data.repeat), np.concatenate([train.y] * data.repeat))
    return Splits(train, validation, test, origin)
