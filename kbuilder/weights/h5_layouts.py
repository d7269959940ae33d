"""The arrays of an HDF5 weights file, in Keras 3's layout or the legacy one, read as untrusted.

Keras 3 (`model.save_weights("x.weights.h5")`, and a `.keras` file's model.weights.h5) keys
each layer by its class (`layers/conv2d_1/vars/0..n`) and writes the layer's name as the
`name` attribute of its `vars` group; a composite layer's sublayers are groups of their own
(`layers/multi_head_attention/query_dense/vars/0`), a nested model has `layers` again. The
legacy layout (keras.applications' files, Keras 2's `save_weights("x.h5")`, `model_weights` in
a legacy full-model file) lists `layer_names` at the top and `weight_names` per layer.

Nothing here runs code the file brings: only plain groups and numeric datasets are read; a link
to another file (external link, external storage, virtual dataset), a dataset larger than the
limit, a non-numeric dtype or a truncated file is refused naming the file and the dataset.
"""

from __future__ import annotations

from collections.abc import Iterator

import h5py
import numpy as np

from kbuilder.errors import UsageError

MAX_TENSORS = 200_000
MAX_NAME_CHARS = 1_000


class WeightsFileError(UsageError):
    """A weights file that cannot be read safely or is not one (exit 2)."""

    title = "invalid weights file"


class Reader:
    """Reads datasets out of one file, counting elements against `limit` as it goes."""

    def __init__(self, shown: str, limit: int):
        self.shown, self.limit, self.elements = shown, limit, 0
        self.tensors: dict[str, np.ndarray] = {}
        self.layers: dict[str, list[str]] = {}

    def fail(self, where: str, why: str) -> WeightsFileError:
        return WeightsFileError(f"{self.shown}: {where}: {why}")

    def child(self, group: h5py.Group, key: str, where: str) -> h5py.Group | h5py.Dataset:
        """A member of `group` that lives in this file (a hard link), never one elsewhere."""
        if "/" in key:
            raise self.fail(f"{where}/{key}", "a name with '/' (a path, not a layer or variable name)")
        link = group.get(key, getlink=True)
        if link is None:
            raise self.fail(f"{where}/{key}", "listed but missing")
        if not isinstance(link, h5py.HardLink):
            kind = "an external link" if isinstance(link, h5py.ExternalLink) else "a soft link"
            raise self.fail(f"{where}/{key}", f"{kind}; a weights file holds its arrays itself")
        return group[key]

    def array(self, dataset: h5py.Dataset, where: str) -> np.ndarray:
        if dataset.external or dataset.is_virtual:
            raise self.fail(where, "the data lives in other files (external storage or a virtual dataset)")
        dtype = dataset.dtype
        if dtype.kind not in "fiu" or dtype.itemsize > 8:
            raise self.fail(where, f"dtype {dtype} is not a number; weights are floats (or integer counters)")
        count = int(np.prod(dataset.shape, dtype=np.int64)) if dataset.shape else 1
        self.elements += count
        if self.elements > self.limit:
            raise self.fail(
                where,
                f"declares {count:,} elements ({self.elements:,} so far), more than the limit of "
                f"{self.limit:,} (--max-params or KBUILDER_MAX_PARAMS)",
            )
        if len(self.tensors) >= MAX_TENSORS:
            raise self.fail(where, f"more than {MAX_TENSORS:,} tensors")
        if count and dataset.id.get_storage_size() == 0:
            raise self.fail(where, f"declares shape {dataset.shape} but holds no data (a truncated file?)")
        try:
            return np.asarray(dataset[()])
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise self.fail(where, f"cannot be read ({exc}); the file is truncated or corrupt") from None

    def add_layer(self, name: str, keys: list[str]) -> None:
        if len(name) > MAX_NAME_CHARS:
            raise self.fail(name[:60] + "...", f"a layer name longer than {MAX_NAME_CHARS} characters")
        if name in self.layers:
            raise self.fail(name, "two layers of this name; layer names in a model are unique")
        self.layers[name] = keys


def has(group: h5py.Group, key: str) -> bool:
    """Whether `group` holds `key`, without following a link (`key in group` resolves it)."""
    return group.get(key, getlink=True) is not None


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def read_keras3(handle: h5py.File, reader: Reader) -> None:
    """`layers/<key>/vars/<i>` with the layer's name on `vars`; nested models flattened."""
    _read_model(reader.child(handle, "layers", ""), "layers", reader)


def _read_model(layers: h5py.Group | h5py.Dataset, where: str, reader: Reader) -> None:
    if not isinstance(layers, h5py.Group):
        raise reader.fail(where, "expected a group of layers")
    for key in layers:
        group = reader.child(layers, key, where)
        if not isinstance(group, h5py.Group):
            raise reader.fail(f"{where}/{key}", "expected a layer's group")
        if has(group, "layers"):  # a model used as a layer: its layers are the model's too
            _read_model(reader.child(group, "layers", f"{where}/{key}"), f"{where}/{key}/layers", reader)
            continue
        name = _layer_name(group, key, f"{where}/{key}", reader)
        keys = list(_layer_tensors(group, name, f"{where}/{key}", reader))
        reader.add_layer(name, keys)


def _layer_name(group: h5py.Group, key: str, where: str, reader: Reader) -> str:
    if not has(group, "vars"):
        return key
    variables = reader.child(group, "vars", where)
    return _text(variables.attrs.get("name", key))


def _layer_tensors(group: h5py.Group, prefix: str, where: str, reader: Reader) -> Iterator[str]:
    """The layer's own variables (`prefix/vars/0..n`, in their order), then each sublayer's
    (`prefix/<sublayer name>/vars/i`), registered in `reader.tensors` as they are read."""
    for key in group:
        if key == "vars":
            continue
        sub = reader.child(group, key, where)
        if not isinstance(sub, h5py.Group):
            raise reader.fail(f"{where}/{key}", "expected a sublayer's group")
    if has(group, "vars"):
        variables = reader.child(group, "vars", where)
        if not isinstance(variables, h5py.Group):
            raise reader.fail(f"{where}/vars", "expected a group of variables")
        indices = sorted(variables, key=lambda k: int(k) if k.isdigit() else -1)
        if any(not k.isdigit() for k in indices):
            raise reader.fail(f"{where}/vars", f"variables are numbered 0..n, found {indices[0]!r}")
        for index in indices:
            dataset = reader.child(variables, index, f"{where}/vars")
            if not isinstance(dataset, h5py.Dataset):
                raise reader.fail(f"{where}/vars/{index}", "expected an array")
            name = f"{prefix}/vars/{index}"
            reader.tensors[name] = reader.array(dataset, f"{where}/vars/{index}")
            yield name
    for key in group:
        if key == "vars":
            continue
        sub = group[key]
        sub_name = _layer_name(sub, key, f"{where}/{key}", reader)
        yield from _layer_tensors(sub, f"{prefix}/{sub_name}", f"{where}/{key}", reader)


def read_legacy(group: h5py.Group, reader: Reader) -> None:
    """`layer_names` on the top group, `weight_names` on each layer's group, in the model's
    order (what Keras 2 and keras.applications' files hold)."""
    for raw in np.atleast_1d(group.attrs["layer_names"]):
        name = _text(raw)
        layer = reader.child(group, name, "")
        if not isinstance(layer, h5py.Group):
            raise reader.fail(name, "expected a layer's group")
        keys = []
        for weight in np.atleast_1d(layer.attrs.get("weight_names", [])):
            weight_name = _text(weight)
            node: h5py.Group | h5py.Dataset = layer
            for part in weight_name.split("/"):
                if not isinstance(node, h5py.Group):
                    raise reader.fail(f"{name}/{weight_name}", "expected a group on the way")
                node = reader.child(node, part, name)
            if not isinstance(node, h5py.Dataset):
                raise reader.fail(f"{name}/{weight_name}", "expected an array")
            key = weight_name if weight_name not in reader.tensors else f"{name}/{weight_name}"
            reader.tensors[key] = reader.array(node, f"{name}/{weight_name}")
            keys.append(key)
        reader.add_layer(name, keys)


def read_weights(handle: h5py.File, reader: Reader) -> str:
    """Read either layout from an open file; returns which one it was."""
    if "layer_names" in handle.attrs:
        read_legacy(handle, reader)
        return "legacy"
    if has(handle, "model_weights"):
        weights = reader.child(handle, "model_weights", "")
        if isinstance(weights, h5py.Group) and "layer_names" in weights.attrs:
            read_legacy(weights, reader)
            return "legacy"
    if has(handle, "layers"):
        read_keras3(handle, reader)
        return "keras3"
    raise WeightsFileError(
        f"{reader.shown}: not a Keras weights file (neither Keras 3's `layers/` groups nor the "
        "legacy `layer_names` attribute)"
    )
