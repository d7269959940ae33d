"""One Keras layer (class name + config) -> one kbuilder layer kind with the same arguments.

The table is the registry itself: a kind whose spec names a Keras class (`keras_class`) imports
that class. A config value is carried over when the kind has the field; a value the kind lacks
must be Keras's default (checked against the class's constructor), or the layer is refused:
nothing is silently dropped that would change what the layer computes. Initializers are left
out (the weights come from the source; the spec's kinds start from their own defaults).
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass
from typing import Any

import keras

from kbuilder.importer.keras_graph import KerasLayer
from kbuilder.spec.registry import LAYER_KINDS, LayerSpec

META_KEYS = frozenset({"name", "trainable", "dtype", "data_format", "build_config", "compile_config"})
# Keras classes that several kinds build: the one that carries the Keras arguments as they are.
PREFERRED = {"Activation": "activation"}
# Layers Keras's applications define in their own modules, by (module, class): their kbuilder kind
# and how their config's fields are named there. Any other non-Keras class is a custom object.
APPLICATION_LAYERS = {
    ("keras.src.applications.convnext", "LayerScale"): ("layer_scale", {"init_values": "init_value"}),
    ("keras.src.applications.inception_resnet_v2", "CustomScaleLayer"): ("scaled_add", {}),
}
# Keras operations on tensors recorded in a functional model (`x + y` is ops.numpy.Add): the
# merge kinds compute the same, with broadcasting.
OPERATIONS = {
    ("keras.src.ops.numpy", "Add"): "add",
    ("keras.src.ops.numpy", "Subtract"): "subtract",
    ("keras.src.ops.numpy", "Multiply"): "multiply",
    ("keras.src.ops.numpy", "Maximum"): "maximum",
}
REGULARIZERS = {"L1": ("l1",), "L2": ("l2",), "L1L2": ("l1", "l2")}
# Defaults Keras takes through **kwargs (not in the constructor's signature).
KNOWN_DEFAULTS = {"rms_scaling": False}
SQUEEZABLE = frozenset(
    {"kernel_size", "strides", "pool_size", "dilation_rate", "size", "padding", "cropping"}
)


@dataclass
class Unmapped:
    """Why a layer has no kind: the class is unknown, or an argument has no field."""

    layer: KerasLayer
    reason: str
    needed_kind: str | None = None  # the kind it would need, when the class has none


def snake_case(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def keras_kinds() -> dict[str, str]:
    """Each Keras class some kind builds -> that kind."""
    table: dict[str, str] = {}
    for kind, spec in LAYER_KINDS.items():
        cls = spec.keras_class
        if cls and not cls.startswith("kbuilder:") and cls not in table:
            table[cls] = kind
    return {**table, **PREFERRED}


def _default(class_name: str, key: str) -> Any:
    """Keras's default for a constructor argument; `inspect._empty` when it has none."""
    cls = getattr(keras.layers, class_name, None)
    if cls is None:
        return inspect.Parameter.empty
    parameter = inspect.signature(cls.__init__).parameters.get(key)
    return parameter.default if parameter is not None else inspect.Parameter.empty


def _squeeze(value: Any) -> Any:
    """[3, 3] -> 3 and [[1, 1], [1, 1]] -> 1: the same meaning, written shorter."""
    if isinstance(value, list) and value and all(v == value[0] for v in value):
        inner = _squeeze(value[0])
        return inner if not isinstance(inner, list) else value
    return value


def _field_names(spec: type[LayerSpec]) -> dict[str, str]:
    """Keras argument name -> the spec field's name (aliases such as output_shape included)."""
    names = {}
    for name, info in spec.model_fields.items():
        names[name] = name
        if info.alias:
            names[info.alias] = name
    return names


def _regularizer(value: Any) -> dict[str, float] | None:
    if not isinstance(value, dict):
        return None
    keys = REGULARIZERS.get(value.get("class_name", ""))
    config = value.get("config")
    if not isinstance(config, dict):
        return None
    if keys is None or not all(isinstance(config.get(k), (int, float)) for k in keys):
        return None
    return {k: float(config[k]) for k in keys if config[k]}


def _convert(key: str, value: Any) -> Any:
    if key == "activation" and value == "linear":
        return None
    if key == "axis" and isinstance(value, list) and len(value) == 1:
        return value[0]
    return _squeeze(value) if key in SQUEEZABLE else value


def map_layer(layer: KerasLayer) -> tuple[str, dict[str, Any]] | Unmapped:
    """The kind and arguments (without `name`/`inputs`) for one Keras layer, or why not."""
    renames: dict[str, str] = {}
    app_layer = APPLICATION_LAYERS.get((layer.module, layer.class_name))
    operation = OPERATIONS.get((layer.module, layer.class_name))
    if operation is not None:
        extra = [k for k in layer.config if k != "name"]
        if extra:
            return Unmapped(layer, f"operation {layer.class_name} with arguments {extra}: not a plain merge")
        if layer.constants:
            return _with_constant(layer, operation)
        return operation, {}
    if app_layer is not None:
        kind, renames = app_layer
    elif layer.module not in ("keras.layers", "") and not layer.module.startswith("keras.src.layers"):
        return Unmapped(
            layer,
            f"class '{layer.class_name}' from module '{layer.module}' is a custom object: its code is "
            "not in the file, and a spec never names Python code",
            snake_case(layer.class_name),
        )
    else:
        found = keras_kinds().get(layer.class_name)
        if found is None:
            return Unmapped(
                layer,
                f"no kbuilder kind builds keras.layers.{layer.class_name}",
                snake_case(layer.class_name),
            )
        kind = found
    spec = LAYER_KINDS[kind]
    fields = _field_names(spec)
    args: dict[str, Any] = {}
    for key, value in layer.config.items():
        if key in META_KEYS:
            if key == "data_format" and value not in (None, "channels_last"):
                return Unmapped(layer, f"data_format {value!r}: kbuilder builds channels-last layers only")
            if key == "dtype" and not _float32(value):
                return Unmapped(layer, f"dtype policy {value!r:.60}: kbuilder builds float32 layers")
            if key == "trainable" and value is False:  # a frozen layer stays frozen
                args["trainable"] = False
            continue
        key = renames.get(key, key)
        if key.endswith("_initializer"):
            continue
        if key.endswith("_regularizer") and value is not None:
            regularizer = _regularizer(value)
            if regularizer is None or key not in fields:
                return Unmapped(layer, f"{key} {value!r:.80} has no kbuilder equivalent")
            args[key] = regularizer
            continue
        value = _convert(key, value)
        if key in fields and fields[key] not in ("name", "inputs", "trainable", "when"):
            field = spec.model_fields[fields[key]]
            if value != field.default:
                args[field.alias or fields[key]] = value
            continue
        default = KNOWN_DEFAULTS.get(key, inspect.Parameter.empty)
        if default is inspect.Parameter.empty:
            default = _default(layer.class_name, key)
        if value == _convert(key, default) or key == "projection_dim" and app_layer:
            continue
        return Unmapped(layer, f"argument {key}={value!r:.80} has no field in kbuilder's '{kind}' kind")
    if kind == "activation" and args.get("activation") is None:
        args["activation"] = "linear"
    return kind, args


def _with_constant(layer: KerasLayer, operation: str) -> tuple[str, dict[str, Any]] | Unmapped:
    """`x + c`, `x * c`, `x - c` (MobileNetV3 writes its hard sigmoid so) as `rescaling`:
    x * 1 + c and x * c + 0 give the same floats as the operation."""
    ((position, value),) = layer.constants
    if operation == "add":
        return "rescaling", {"scale": 1.0, "offset": value}
    if operation == "multiply":
        return "rescaling", {"scale": value}
    if operation == "subtract" and position == 1:
        return "rescaling", {"scale": 1.0, "offset": -value}
    return Unmapped(layer, f"operation {layer.class_name} with the number {value} as argument {position}")


def _float32(policy: Any) -> bool:
    if isinstance(policy, str):
        return policy == "float32"
    if isinstance(policy, dict):
        config = policy.get("config")
        return isinstance(config, dict) and config.get("name") == "float32"
    return policy is None
