"""Time per layer, as `caffe time` does: each layer run alone on its real input.

The whole model runs once on a random batch and every layer's output is kept; each layer is
then timed as a model of its own (the Keras operations its node built, so a composite layer
is timed as a unit) on the tensors its inputs produced: a few warm-up calls, then the fastest
of repeats (kbuilder.profile.calls). The whole model's forward pass (and, with `train`, its
forward + backward) is timed the same way, so the report can say how far the sum of the
layers is from the measured step: the difference is what running layers one at a time costs
or saves (per-call overhead, fusion across layers, caches).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np

from kbuilder.profile import calls
from kbuilder.report.rows import make_report

MEASURE_BUDGET_S = 10.0  # past it, rounds stop at three (a large model's layers take long)


@dataclass
class LayerTime:
    name: str
    kind: str
    group: str  # the blocks it sits in, outermost first ("" at the top)
    line: int | None
    output_shape: list
    macs: int  # per sample (the layer table's figure)
    activation_bytes: int  # the output at the profiled batch size
    forward_s: float
    backward_s: float | None = None  # with `train`: (forward + backward) - forward

    @property
    def step_s(self) -> float:
        return self.forward_s + (self.backward_s or 0.0)

    def as_json(self, batch_size: int, total_s: float) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "group": self.group,
            "line": self.line,
            "output_shape": self.output_shape,
            "macs": self.macs,
            "activation_bytes": self.activation_bytes,
            "forward_ms": round(self.forward_s * 1e3, 4),
            "backward_ms": None if self.backward_s is None else round(self.backward_s * 1e3, 4),
            "share": round(self.step_s / total_s, 4) if total_s else None,
            "forward_gflop_per_s": _rate(2 * self.macs * batch_size, self.forward_s),
            "step_gflop_per_s": None
            if self.backward_s is None
            else _rate(6 * self.macs * batch_size, self.step_s),
        }


def _rate(flops: float, seconds: float) -> float | None:
    return round(flops / seconds / 1e9, 3) if flops and seconds > 0 else None


@dataclass
class LayerProfile:
    """Every layer's time at one batch size, and the whole model's measured step."""

    batch_size: int
    train: bool
    layers: list[LayerTime] = field(default_factory=list)
    model_forward_s: float = 0.0
    model_step_s: float | None = None  # forward + backward of the whole model (with `train`)

    @property
    def layers_s(self) -> float:
        return sum(layer.step_s for layer in self.layers)

    @property
    def measured_s(self) -> float:
        return self.model_step_s if self.train and self.model_step_s is not None else self.model_forward_s

    @property
    def difference(self) -> float:
        """(sum of the layers - measured step) / measured step."""
        return (self.layers_s - self.measured_s) / self.measured_s if self.measured_s else 0.0

    def as_json(self) -> dict[str, Any]:
        total = self.layers_s
        return {
            "batch_size": self.batch_size,
            "train": self.train,
            "layers": [layer.as_json(self.batch_size, total) for layer in self.layers],
            "sum_of_layers_ms": round(total * 1e3, 4),
            "measured_ms": round(self.measured_s * 1e3, 4),
            "measured": "forward + backward of the whole model"
            if self.train
            else "forward of the whole model",
            "difference": round(self.difference, 4),
            "blocks": self.blocks(total),
        }

    def blocks(self, total: float) -> list[dict[str, Any]]:
        """Subtotals of every block (each level of nesting), in the order they first appear."""
        sums: dict[str, list[LayerTime]] = {}
        for layer in self.layers:
            parts = layer.group.split("/") if layer.group else []
            for depth in range(1, len(parts) + 1):
                sums.setdefault("/".join(parts[:depth]), []).append(layer)
        return [
            {
                "block": name,
                "layers": len(members),
                "macs": sum(m.macs for m in members),
                "forward_ms": round(sum(m.forward_s for m in members) * 1e3, 4),
                "backward_ms": round(sum(m.backward_s or 0.0 for m in members) * 1e3, 4)
                if self.train
                else None,
                "share": round(sum(m.step_s for m in members) / total, 4) if total else None,
            }
            for name, members in sums.items()
        ]


def random_inputs(tensors: list[Any], batch_size: int, seed: int = 0) -> list[Any]:
    """A batch for each input tensor: standard normal floats, zeros for integer inputs (token
    ids, which any embedding accepts)."""
    rng = np.random.default_rng(seed)
    batch = []
    for tensor in tensors:
        shape = (batch_size, *(int(d) for d in tensor.shape[1:]))
        dtype = np.dtype(str(tensor.dtype))
        array = rng.standard_normal(shape).astype(dtype) if dtype.kind == "f" else np.zeros(shape, dtype)
        batch.append(keras.ops.convert_to_tensor(array))
    return batch


def output_bytes(tensor: Any, batch_size: int) -> int:
    per_sample = int(np.prod([int(d) for d in tensor.shape[1:]], dtype=np.int64))
    return per_sample * batch_size * np.dtype(str(tensor.dtype)).itemsize


def profile_layers(built: Any, batch_size: int, *, train: bool = False, repeats: int = 10) -> LayerProfile:
    """Time each layer of a kbuilder.build.BuiltModel, and the whole model, at `batch_size`."""
    model, graph = built.model, built.graph
    keras_layers = {layer.name: layer for layer in model.layers}
    rows = {row.name: row for row in make_report(built).rows}
    sources = [keras_layers[name].output for name in graph.inputs]
    whole = keras.Model(sources, model.outputs)  # fed a list, in the graph's order of inputs
    inputs = random_inputs(sources, batch_size)
    nodes = [node for node in graph.nodes if node.kind != "input"]
    everything = keras.Model(sources, [keras_layers[node.name].output for node in nodes])
    outputs = everything(_feed(inputs), training=False)
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    values = dict(zip([node.name for node in nodes], outputs))
    values.update(zip(graph.inputs, inputs))
    kinds = {node.name: node.kind for node in graph.nodes}
    timed: list[calls.Call] = []
    for node in nodes:
        own = [keras_layers[name].output for name in node.inputs]
        alone = keras.Model(own[0] if len(own) == 1 else own, keras_layers[node.name].output)
        feed = [values[name] for name in node.inputs]
        timed.append(calls.forward(alone, feed, training=train))
        if train:
            needs = [kinds[name] != "input" and _is_float(values[name]) for name in node.inputs]
            timed.append(calls.gradient(alone, feed, needs))
    timed.append(calls.forward(whole, inputs, training=train))
    if train:
        timed.append(calls.gradient(whole, inputs, [False] * len(inputs)))
    # Every layer and the whole model in the same rounds: a change of load hits them alike.
    best = calls.interleaved_best(timed, repeats=repeats, budget_s=MEASURE_BUDGET_S)
    per_node = 2 if train else 1
    result = LayerProfile(batch_size, train)
    for index, node in enumerate(nodes):
        forward = best[index * per_node]
        backward = max(best[index * per_node + 1] - forward, 0.0) if train else None
        row = rows[node.name]
        result.layers.append(
            LayerTime(
                name=node.name,
                kind=node.kind,
                group="/".join(node.group),
                line=node.line,
                output_shape=row.output_shape,
                macs=row.macs,
                activation_bytes=output_bytes(keras_layers[node.name].output, batch_size),
                forward_s=forward,
                backward_s=backward,
            )
        )
    whole_times = best[len(nodes) * per_node :]
    result.model_forward_s = whole_times[0]
    result.model_step_s = whole_times[1] if train else None
    return result


def _feed(inputs: list[Any]) -> Any:
    return inputs[0] if len(inputs) == 1 else inputs


def _is_float(tensor: Any) -> bool:
    return np.dtype(str(keras.ops.dtype(tensor))).kind == "f"
