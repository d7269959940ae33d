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
Then the file is loaded with safe_mode=True.
"""

from __future__ import annotations

import importlib
import json
import os
import stat
import zipfile
from pathlib import Path
from typing import Any

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
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as exc:
        raise _refuse(path, f"not a valid .keras (zip) file ({exc})") from None
    try:
        config = json.loads(config_text)
    except (ValueError, RecursionError) as exc:
        raise _refuse(path, f"its config.json is not valid JSON ({type(exc).__name__})") from None
    problem = first_foreign_class(config)
    if problem:
        raise _refuse(path, problem)


def _kbuilder_layers() -> set[str]:
    return {name for name in keras.saving.get_custom_objects() if name.startswith("kbuilder>")}


def _keras_has(module: str, name: str) -> bool:
    try:
        return hasattr(importlib.import_module(module), name)  # only ever a module of KERAS_MODULES
    except ImportError:
        return False


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
            and any(_keras_has(candidate, name) for candidate in modules)
        )
        return None if ok else f"it names the function {module}.{name} (a foreign module or function)"
    if module in KERAS_MODULES and reg in (None, class_name) and _keras_has(module, class_name):
        return None
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
