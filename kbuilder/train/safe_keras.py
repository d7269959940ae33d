"""Checking a `.keras` file before Keras deserializes anything in it.

A `.keras` file is a zip of config.json (what to construct), metadata.json and
model.weights.h5. Keras's safe mode refuses Lambda bytecode, but it has been bypassed
through config.json itself (CVE-2025-1550: a foreign `module`/`class_name` such as
`os.system`; CVE-2025-9906: a config that calls `keras.config.enable_unsafe_deserialization`).
So kbuilder reads config.json as plain JSON first and allows only:
- classes of Keras's own public namespaces (keras.layers, keras.initializers, ...),
  except the layers that run foreign code (Lambda, TorchModuleWrapper, JaxLayer, ...);
- kbuilder's registered layers (`kbuilder>Name` in `kbuilder.layers.*`);
- Keras's own serialized values (`__keras_tensor__`, `__numpy__`, ...), not `__lambda__`;
and only the three members Keras writes, the weights in HDF5 (never npz or pickle).
Defence in depth, for what Keras's safe mode alone stops today: a name must be a class
(`keras.models.load_model` is a function), a lookup layer's vocabulary must be a list (a
string is a file Keras would read: `/etc/passwd`), and the weights file may not reach out of
itself (an HDF5 ExternalLink, a dataset stored in external files, a virtual dataset).
Then the file is loaded with safe_mode=True.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import stat
import zipfile
from pathlib import Path
from typing import Any

import h5py
import keras

import kbuilder.layers  # noqa: F401  (registers kbuilder's layers with Keras)
from kbuilder.errors import KBuilderError

MEMBERS = {"config.json", "metadata.json", "model.weights.h5"}
MAX_CONFIG_BYTES = 64 << 20
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
# Keras namespaces whose classes only hold numbers and settings.
KERAS_MODULES = {
    "keras",
    "keras.layers",
    "keras.initializers",
    "keras.regularizers",
    "keras.constraints",
    "keras.optimizers",
    "keras.optimizers.schedules",
    "keras.losses",
    "keras.metrics",
    "keras.dtype_policies",
    "keras.models",
}
KERAS_MODELS = {
    "keras.src.models.functional": "Functional",
    "keras.src.models.sequential": "Sequential",
    "keras.src.models.model": "Model",
}
# Keras classes that run code the file brings along (bytecode, pickles, SavedModels, modules).
CODE_RUNNING = {
    "Lambda",
    "TorchModuleWrapper",
    "JaxLayer",
    "FlaxLayer",
    "TFSMLayer",
    "TFOpLambda",
    "SlicingOpLambda",
}
KERAS_VALUES = {"__keras_tensor__", "__tensor__", "__numpy__", "__bytes__", "__slice__", "__ellipsis__"}
FUNCTION_MODULES = {"keras.activations", "keras.losses", "keras.metrics"}
# Functions of those modules that look names up or build objects rather than compute.
NOT_FUNCTIONS = {"get", "deserialize", "serialize"}
# The most HDF5 objects one weights file may hold (a model has a few per layer).
MAX_HDF5_OBJECTS = 1_000_000


class UnsafeModelFile(KBuilderError):
    """A `.keras` file names something kbuilder does not construct."""

    title = "refused model file"


def _refuse(path: Path, why: str) -> UnsafeModelFile:
    return UnsafeModelFile(
        f"{path}: {why}; kbuilder loads only Keras's own layers and its registered ones, "
        "so nothing in this file was run"
    )


def inspect_keras_file(path: str | os.PathLike) -> None:
    """Raises UnsafeModelFile unless every member and every class of `path` is allowed."""
    path = Path(path)
    try:
        info = os.lstat(path)
    except OSError:
        raise _refuse(path, "no such file") from None
    if not stat.S_ISREG(info.st_mode):
        raise _refuse(path, "not a regular file (a link, device or folder)")
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            foreign = sorted(names - MEMBERS)
            if foreign:
                raise _refuse(
                    path, f"it holds {', '.join(foreign[:3])}, which Keras's own .keras files never hold"
                )
            if "config.json" not in names or "model.weights.h5" not in names:
                raise _refuse(path, "it has no config.json or no model.weights.h5")
            config_info = archive.getinfo("config.json")
            if config_info.file_size > MAX_CONFIG_BYTES:
                raise _refuse(path, f"its config.json declares {config_info.file_size} bytes")
            config_text = archive.read(config_info)
            with archive.open("model.weights.h5") as weights:
                if weights.read(len(HDF5_SIGNATURE)) != HDF5_SIGNATURE:
                    raise _refuse(
                        path, "its model.weights.h5 is not an HDF5 file (kbuilder never reads pickles)"
                    )
            with archive.open("model.weights.h5") as weights:
                problem = first_outside_reference(weights)
            if problem:
                raise _refuse(path, problem)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as exc:
        raise _refuse(path, f"not a valid .keras (zip) file ({exc})") from None
    try:
        config = json.loads(config_text)
    except (ValueError, RecursionError) as exc:
        raise _refuse(path, f"its config.json is not valid JSON ({type(exc).__name__})") from None
    problem = first_foreign_class(config)
    if problem:
        raise _refuse(path, problem)


def first_outside_reference(stream) -> str | None:
    """The first link or dataset of an HDF5 file that reads another file, described; or None.
    Only the file's structure is read (links and dataset layouts), never its data."""
    try:
        with h5py.File(stream, "r") as weights:
            groups, seen = [weights], 0
            while groups:
                group = groups.pop()
                for name in group:
                    seen += 1
                    if seen > MAX_HDF5_OBJECTS:
                        return f"its model.weights.h5 holds more than {MAX_HDF5_OBJECTS} objects"
                    link = group.get(name, getlink=True)
                    where = f"{group.name.rstrip('/')}/{name}"
                    if isinstance(link, h5py.ExternalLink):
                        return f"its model.weights.h5 links {where} to {link.filename}:{link.path} (an HDF5 external link)"
                    if isinstance(link, h5py.SoftLink):
                        continue  # a name for an object of this file, reached on its own
                    item = group.get(name)
                    if isinstance(item, h5py.Group):
                        groups.append(item)
                    elif isinstance(item, h5py.Dataset):
                        if item.external:
                            files = ", ".join(str(entry[0]) for entry in item.external[:3])
                            return f"its model.weights.h5 stores {where} in other files ({files})"
                        if item.is_virtual:
                            return f"its model.weights.h5 maps {where} onto other files (a virtual dataset)"
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        return f"its model.weights.h5 is not a readable HDF5 file ({exc})"
    return None


def _kbuilder_layers() -> set[str]:
    return {name for name in keras.saving.get_custom_objects() if name.startswith("kbuilder>")}


def _keras_attribute(module: str, name: str) -> Any:
    try:
        # Only ever a module of KERAS_MODULES or FUNCTION_MODULES.
        return getattr(importlib.import_module(module), name, None)
    except ImportError:
        return None


def _keras_class(module: str, name: str) -> bool:
    """A class of the module (`keras.models.load_model` is a function: constructing it loads a file)."""
    return inspect.isclass(_keras_attribute(module, name))


def _keras_function(module: str, name: str) -> bool:
    return name not in NOT_FUNCTIONS and inspect.isfunction(_keras_attribute(module, name))


def _file_vocabulary(obj: dict) -> str | None:
    """Lookup layers and TextVectorization read a vocabulary given as a string from that file."""
    config = obj.get("config")
    if isinstance(config, dict) and isinstance(config.get("vocabulary"), str):
        return f"its {obj.get('class_name')} reads its vocabulary from the file {config['vocabulary']!r}"
    return None


def _check_object(obj: dict, registered: set[str]) -> str | None:
    class_name, module, reg = obj.get("class_name"), obj.get("module"), obj.get("registered_name")
    if (
        not isinstance(class_name, str)
        or not (module is None or isinstance(module, str))
        or not (reg is None or isinstance(reg, str))
    ):
        return f"an object with class_name {class_name!r} and module {module!r} is malformed"
    shown = f"{module}.{class_name}" if module else class_name
    if class_name in CODE_RUNNING or class_name == "__lambda__":
        return f"it holds a {class_name} (code carried by the file), which kbuilder never runs"
    if module is None:
        return None if class_name in KERAS_VALUES else f"it names an unknown class {class_name!r}"
    if module.startswith("kbuilder."):
        ok = module.startswith("kbuilder.layers.") and reg == f"kbuilder>{class_name}" and reg in registered
        return None if ok else f"it names {shown} ({reg}), which is not a registered kbuilder layer"
    if module in KERAS_MODELS:
        return (
            None if class_name == KERAS_MODELS[module] and reg in (None, class_name) else f"it names {shown}"
        )
    if class_name == "function":
        name = obj.get("config")
        # Keras saves a loss it got by name (keras.losses.get("mean_squared_error")) under the
        # module "builtins"; it resolves the name among its own functions on load, so do we.
        modules = FUNCTION_MODULES if module == "builtins" else {module} & FUNCTION_MODULES
        ok = (
            isinstance(name, str)
            and not name.startswith("_")
            and any(_keras_function(candidate, name) for candidate in modules)
        )
        return None if ok else f"it names the function {module}.{name} (a foreign module or function)"
    if module in KERAS_MODULES and reg in (None, class_name) and _keras_class(module, class_name):
        return _file_vocabulary(obj)
    return f"it names {shown}, which is not a Keras built-in class (a foreign module or class name)"


def first_foreign_class(config: Any) -> str | None:
    """The first object in a config that kbuilder would not construct, described; or None."""
    registered = _kbuilder_layers()
    stack = [config]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if "class_name" in item or "module" in item or "registered_name" in item:
                problem = _check_object(item, registered)
                if problem:
                    return problem
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None


def load_keras_file(path: str | os.PathLike, *, compile: bool = True) -> Any:
    """The model in `path`, after inspect_keras_file, loaded in Keras's safe mode."""
    inspect_keras_file(path)
    return keras.saving.load_model(path, safe_mode=True, compile=compile)
