"""A Keras model's serialized config (what `.keras` files hold in config.json) read as plain data.

Nothing here deserializes or runs anything: the config is untrusted JSON, read field by field.
The result is a flat list of layers in the file's (topological) order, each with the names of
the layers it takes; nested Sequential models are inlined, so their layers keep their own names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kbuilder.errors import Location, Problem, SpecError

# Classes that run code named in the file, or that the config cannot describe: refused outright.
CODE_CLASSES = frozenset({"Lambda", "TFOpLambda", "SlicingOpLambda", "TorchModuleWrapper", "JaxLayer"})
MAX_LAYERS = 20_000
MAX_NESTING = 8


@dataclass
class KerasLayer:
    """One layer of the source: its Keras class, config and the layers it takes."""

    name: str
    class_name: str
    module: str
    config: dict[str, Any]
    inputs: list[str]
    where: str  # e.g. "config.layers[12]": where it is in config.json
    constants: list[tuple[int, float]] = field(default_factory=list)  # numbers among an operation's arguments


@dataclass
class KerasGraph:
    name: str
    inputs: dict[str, list[int | None]]  # input layer name -> shape without the batch axis
    layers: list[KerasLayer] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)


def _refuse(source: str, where: str, message: str) -> SpecError:
    return SpecError([Problem(Location(source, path=where), message)])


def _mapping(value: Any, source: str, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _refuse(source, where, f"expected a JSON object, got {type(value).__name__}")
    return value


def _text(value: Any, source: str, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise _refuse(source, where, f"expected a non-empty string, got {value!r:.80}")
    return value


def _tensor_names(value: Any, source: str, where: str) -> list[str]:
    """The layer names behind the Keras tensors in a call's arguments (one tensor or a list)."""
    if isinstance(value, list):
        return [n for item in value for n in _tensor_names(item, source, where)]
    if isinstance(value, dict) and value.get("class_name") == "__keras_tensor__":
        history = _mapping(value.get("config"), source, where).get("keras_history")
        if not (isinstance(history, list) and len(history) == 3 and isinstance(history[0], str)):
            raise _refuse(
                source, where, f"a tensor reference must be [layer, node, index], got {history!r:.80}"
            )
        if history[1:] != [0, 0]:
            raise _refuse(
                source,
                where,
                f"takes output {history[1:]} of layer '{history[0]}': a shared layer or one with several "
                "outputs has no kbuilder equivalent (each spec layer is called once and has one output)",
            )
        return [history[0]]
    return []


def _call_inputs(entry: dict[str, Any], source: str, where: str) -> tuple[list[str], list[tuple[int, float]]]:
    """The layers a call takes, and the numbers among its arguments (position, value)."""
    nodes = entry.get("inbound_nodes", [])
    if not isinstance(nodes, list):
        raise _refuse(source, where, "inbound_nodes must be a list")
    if len(nodes) > 1:
        raise _refuse(
            source,
            where,
            f"layer '{entry.get('name')}' is called {len(nodes)} times (a shared layer): "
            "a kbuilder layer is called once",
        )
    if not nodes:
        return [], []
    node = _mapping(nodes[0], source, where)
    args = node.get("args", [])
    if not isinstance(args, list) or not args:
        raise _refuse(source, where, f"expected positional arguments (tensors), got {args!r:.80}")
    constants: list[tuple[int, float]] = []
    if len(args) > 1:  # an operation (`x + y` is ops.add(x, y)): tensors, or a tensor and a number
        constants = [(i, float(a)) for i, a in enumerate(args) if isinstance(a, (int, float))]
        tensors = [a for a in args if not isinstance(a, (int, float))]
        names = [_tensor_names(a, source, where) for a in tensors]
        if len(constants) > 1 or not all(
            len(n) == 1 and isinstance(a, dict) for n, a in zip(names, tensors, strict=True)
        ):
            raise _refuse(source, where, f"expected tensors (and one number) as arguments, got {args!r:.120}")
        args = [tensors]
    kwargs = _mapping(node.get("kwargs", {}), source, where)
    tensor_kwargs = [k for k, v in kwargs.items() if _tensor_names(v, source, where)]
    if tensor_kwargs:
        raise _refuse(source, where, f"tensors passed as keyword arguments ({', '.join(tensor_kwargs)})")
    return _tensor_names(args[0], source, where), constants


def _shape(config: dict[str, Any], source: str, where: str) -> list[int | None]:
    shape = config.get("batch_shape") or config.get("batch_input_shape")
    if not isinstance(shape, list) or not shape or not all(d is None or isinstance(d, int) for d in shape):
        raise _refuse(source, where, f"an input needs batch_shape [null, ...], got {shape!r:.80}")
    return list(shape[1:])


class _Reader:
    def __init__(self, source: str):
        self.source = source
        self.graph = KerasGraph("imported", {})
        self.aliases: dict[str, str] = {}  # a nested model's name -> its last layer

    def layer_entry(self, entry: Any, where: str, inputs: list[str], depth: int) -> None:
        entry = _mapping(entry, self.source, where)
        class_name = _text(entry.get("class_name"), self.source, where + ".class_name")
        config = _mapping(entry.get("config"), self.source, where + ".config")
        name = _text(config.get("name", entry.get("name")), self.source, where + ".config.name")
        module = entry.get("module") if isinstance(entry.get("module"), str) else ""
        if len(self.graph.layers) >= MAX_LAYERS:
            raise _refuse(self.source, where, f"more than {MAX_LAYERS} layers")
        if class_name in CODE_CLASSES:
            raise _refuse(
                self.source,
                where,
                f"layer '{name}' is a {class_name}: it holds Python code, which a spec never runs; "
                "rewrite it with kbuilder's layer kinds (`kbuilder schema` lists them)",
            )
        inputs = [self.aliases.get(n, n) for n in inputs]
        if class_name == "InputLayer":
            if depth == 0:
                self.graph.inputs[name] = _shape(config, self.source, where + ".config")
            else:  # a nested Sequential's own input: its layers start from the outer input
                self.aliases[name] = inputs[0] if inputs else name
            return
        if class_name in ("Sequential", "Functional"):
            self.nested(class_name, config, name, where, inputs, depth)
            return
        self.graph.layers.append(KerasLayer(name, class_name, module, config, inputs, where))

    def nested(
        self, class_name: str, config: dict[str, Any], name: str, where: str, inputs: list[str], depth: int
    ) -> None:
        if depth >= MAX_NESTING:
            raise _refuse(self.source, where, f"models nested more than {MAX_NESTING} deep")
        if class_name == "Functional" and depth > 0:
            raise _refuse(
                self.source,
                where,
                f"layer '{name}' is a nested functional model: import it on its own, or flatten it in Keras",
            )
        if class_name == "Functional":
            self.functional(config, where)
            return
        layers = config.get("layers")
        if not isinstance(layers, list) or not layers:
            raise _refuse(self.source, where + ".config.layers", "a Sequential model needs a list of layers")
        previous = inputs
        if depth == 0:
            first = _mapping(layers[0], self.source, where + ".config.layers[0]")
            if first.get("class_name") != "InputLayer":
                build = config.get("build_config") or {}
                shape = build.get("input_shape") if isinstance(build, dict) else None
                if not isinstance(shape, list):
                    raise _refuse(
                        self.source,
                        where,
                        "a Sequential model without an Input and without a built input shape",
                    )
                self.graph.inputs["input"] = list(shape[1:])
                previous = ["input"]
        for i, entry in enumerate(layers):
            here = f"{where}.config.layers[{i}]" if where else f"config.layers[{i}]"
            count = len(self.graph.layers)
            inputs_before = dict(self.graph.inputs)
            self.layer_entry(entry, here, previous, depth + 1 if depth or i else 0)
            if len(self.graph.inputs) > len(inputs_before):
                previous = [next(reversed(self.graph.inputs))]
            elif len(self.graph.layers) > count:
                previous = [self.graph.layers[-1].name]
        if depth > 0:
            self.aliases[name] = previous[0]
        else:
            self.graph.outputs = previous

    def functional(self, config: dict[str, Any], where: str) -> None:
        layers = config.get("layers")
        if not isinstance(layers, list) or not layers:
            raise _refuse(self.source, where + ".config.layers", "a functional model needs a list of layers")
        for i, entry in enumerate(layers):
            here = f"{where}.config.layers[{i}]" if where else f"config.layers[{i}]"
            mapped = _mapping(entry, self.source, here)
            # Only the model's own InputLayers are model inputs (not a nested model's).
            top = 0 if mapped.get("class_name") == "InputLayer" else 1
            inputs, constants = _call_inputs(mapped, self.source, here)
            self.layer_entry(mapped, here, inputs, top)
            if constants and self.graph.layers and self.graph.layers[-1].where == here:
                self.graph.layers[-1].constants = constants
        outputs = config.get("output_layers")
        if isinstance(outputs, list) and outputs and isinstance(outputs[0], str):
            outputs = [outputs]
        if not isinstance(outputs, list) or not all(isinstance(o, list) and o for o in outputs):
            raise _refuse(
                self.source, "config.output_layers", f"expected [[name, 0, 0], ...], got {outputs!r:.80}"
            )
        self.graph.outputs = [self.aliases.get(o[0], o[0]) for o in outputs]


def read_keras_config(config: Any, source: str) -> KerasGraph:
    """The layers of a serialized Keras model (`Functional` or `Sequential`), in order."""
    config = _mapping(config, source, "(top level)")
    class_name = config.get("class_name")
    if class_name not in ("Functional", "Sequential", "Model"):
        raise _refuse(
            source,
            "class_name",
            f"expected a Functional or Sequential model, got {class_name!r:.80} "
            "(a subclassed model's code is not in the file: it cannot be read as a graph)",
        )
    inner = _mapping(config.get("config"), source, "config")
    reader = _Reader(source)
    name = inner.get("name")
    reader.graph.name = name if isinstance(name, str) and name else "imported"
    if class_name == "Sequential":
        reader.nested("Sequential", inner, reader.graph.name, "", [], 0)
    else:
        reader.functional(inner, "")
    if not reader.graph.inputs:
        raise _refuse(source, "config.input_layers", "the model has no input layer")
    known = set(reader.graph.inputs) | {layer.name for layer in reader.graph.layers}
    for layer in reader.graph.layers:
        missing = [n for n in layer.inputs if n not in known]
        if missing:
            raise _refuse(source, layer.where, f"layer '{layer.name}' takes unknown layer(s) {missing}")
    return reader.graph
