"""The ONNX format: Keras's own `model.export(format="onnx")` (tf2onnx on TensorFlow), run
back through onnxruntime for the export check.

One obstacle with TensorFlow 2.21, Keras 3.15 and tf2onnx 1.17: a convolution with
`groups > 1` (AlexNet's two-GPU conv2/4/5) reaches tf2onnx as an opaque
`StatefulPartitionedCall` that onnxruntime rejects. Before converting, such a layer is
lowered to what the original network computed: split the channels into `groups` slices,
convolve each with its slice of the kernel (copied exactly), concatenate. The lowered copy
shares every other layer (and its weights) with the model, and is only traced for
conversion, never saved.

A second one: Keras's `Normalization` (EfficientNet's input stem) keeps its mean and variance
as tensors computed once when it is built; traced, they are captured from outside the graph
and tf2onnx turns them into extra model inputs. The lowered copy computes the same formula
with the values written into the graph as constants.

A third: exact GELU (ViT's MLP) traces to TensorFlow's `Erfc`, for which tf2onnx 1.17 has
no handler; `register_erfc` gives it one, erfc(x) = 1 - erf(x) with ONNX's own Erf.
"""

from __future__ import annotations

import pathlib
import warnings
from typing import Any

import keras
import numpy as np
from keras import ops

from kbuilder.errors import RuntimeFailure
from kbuilder.export.check import match_inputs

ONNX_FILE = "model.onnx"
# The first opset onnxruntime 1.2x runs every op tf2onnx emits for the zoo (LRN, Einsum,
# dynamic Split); Keras's default.
OPSET = 17


class SplitGroupedConv(keras.layers.Layer):
    """A grouped convolution as `groups` ordinary ones on channel slices (export only)."""

    def __init__(self, conv: Any, **kwargs: Any) -> None:
        super().__init__(name=f"{conv.name}_as_split", dtype=conv.dtype_policy, **kwargs)
        self.conv = conv  # the original layer: its variables, strides, padding, activation

    def call(self, inputs: Any) -> Any:
        conv = self.conv
        groups = conv.groups
        slices = ops.split(inputs, groups, axis=-1)
        kernels = ops.split(conv.kernel, groups, axis=-1)
        outputs = [
            ops.conv(
                piece,
                kernel,
                strides=conv.strides,
                padding=conv.padding,
                data_format=conv.data_format,
                dilation_rate=conv.dilation_rate,
            )
            for piece, kernel in zip(slices, kernels)
        ]
        result = ops.concatenate(outputs, axis=-1)
        if conv.use_bias:
            result = result + conv.bias
        return conv.activation(result) if conv.activation is not None else result

    def compute_output_shape(self, input_shape: Any) -> Any:
        return self.conv.compute_output_shape(input_shape)


class ConstantNormalization(keras.layers.Layer):
    """Keras's Normalization with its mean and variance as graph constants (export only)."""

    def __init__(self, norm: Any, **kwargs: Any) -> None:
        super().__init__(name=f"{norm.name}_as_constants", dtype=norm.dtype_policy, **kwargs)
        self.mean = np.asarray(ops.convert_to_numpy(norm.mean))
        self.std = np.maximum(
            np.sqrt(np.asarray(ops.convert_to_numpy(norm.variance))), keras.backend.epsilon()
        )
        self.invert = norm.invert

    def call(self, inputs: Any) -> Any:
        mean = ops.convert_to_tensor(self.mean, dtype=inputs.dtype)
        std = ops.convert_to_tensor(self.std, dtype=inputs.dtype)
        return mean + inputs * std if self.invert else (inputs - mean) / std

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape


def _grouped(layer: Any) -> bool:
    return (
        isinstance(layer, keras.layers.Conv1D | keras.layers.Conv2D | keras.layers.Conv3D)
        and getattr(layer, "groups", 1) > 1
        and layer.data_format == "channels_last"
    )


def _normalization(layer: Any) -> bool:
    return isinstance(layer, keras.layers.Normalization)


# Which layers tf2onnx cannot take as Keras traces them, and what replaces each.
LOWERINGS = ((_grouped, SplitGroupedConv), (_normalization, ConstantNormalization))


def lower_for_onnx(model: keras.Model) -> keras.Model:
    """`model` itself when it has nothing to lower, else a functional copy in which each
    grouped convolution is split / convolve / concatenate and each Normalization computes
    from constants (every other layer, and so every weight, shared)."""

    def lowered(layer: Any) -> Any:
        for applies, lowering in LOWERINGS:
            if applies(layer):
                return lowering(layer)
        return layer  # the original layer object: weights shared, not copied

    if not any(applies(layer) for layer in model.layers for applies, _ in LOWERINGS):
        return model
    if not isinstance(model, keras.Model) or not hasattr(model, "_nodes_by_depth"):
        raise RuntimeFailure(
            "ONNX export: grouped convolutions and Normalization layers can only be lowered "
            "in a functional model"
        )
    return keras.models.clone_model(model, clone_function=lowered)


def register_erfc() -> None:
    """Teaches tf2onnx TensorFlow's `Erfc` (exact GELU): 1 - Erf(x), Erf being ONNX's since
    opset 9. Registered once, before the first conversion; tf2onnx reads its handler table
    at every conversion."""
    # The optional `onnx` extra brings tf2onnx: `import kbuilder.export` works without it.
    from tf2onnx import utils
    from tf2onnx.handler import tf_op

    if any("Erfc" in handlers for opsets in tf_op._OPSETS.values() for handlers in opsets):
        return

    @tf_op("Erfc")
    class Erfc:
        @classmethod
        def version_9(cls, ctx: Any, node: Any, **kwargs: Any) -> None:
            dtype = utils.map_onnx_to_numpy_type(ctx.get_dtype(node.input[0]))
            one = ctx.make_const(utils.make_name(f"{node.name}_one"), np.array(1, dtype)).output[0]
            erf = ctx.make_node("Erf", [node.input[0]], op_name_scope=node.name).output[0]
            shapes, dtypes = node.output_shapes, node.output_dtypes
            ctx.remove_node(node.name)
            ctx.make_node(
                "Sub", [one, erf], outputs=node.output, name=node.name, shapes=shapes, dtypes=dtypes
            )


def write_onnx(model: keras.Model, path: pathlib.Path) -> None:
    """Writes `model` as ONNX to `path` (a tf2onnx conversion of the traced model)."""
    register_erfc()
    lowered = lower_for_onnx(model)
    # Keras refuses to export a model that was never called; one zero batch is enough.
    zeros = keras.tree.map_structure(
        lambda t: keras.ops.zeros((1,) + tuple(t.shape[1:]), dtype=t.dtype), lowered.input
    )
    lowered(zeros, training=False)
    with warnings.catch_warnings():  # tf2onnx's `np.object` probe warns on NumPy 2
        warnings.simplefilter("ignore", FutureWarning)
        lowered.export(str(path), format="onnx", verbose=False, opset_version=OPSET)
    _refuse_unconverted_ops(path)


def _refuse_unconverted_ops(path: pathlib.Path) -> None:
    """tf2onnx writes an op it cannot convert as a TensorFlow node and still succeeds; such a
    file only fails when loaded, so name the op and refuse to keep it."""
    import onnx  # the optional `onnx` extra: `import kbuilder.export` works without it

    graph = onnx.load(str(path), load_external_data=False).graph
    nodes = list(graph.node)
    for function in onnx.load(str(path), load_external_data=False).functions:
        nodes += list(function.node)
    foreign = [node for node in nodes if not onnx.defs.has(node.op_type, node.domain or "")]
    if foreign:
        ops = sorted({node.op_type for node in foreign})
        where = sorted({node.name.rsplit("/", 1)[0] for node in foreign})[:3]
        raise RuntimeFailure(
            f"ONNX cannot carry this model: tf2onnx left the TensorFlow op(s) {', '.join(ops)} "
            f"unconverted (in {', '.join(where)}): a layer with no ONNX equivalent; nothing was "
            "written. Export it without --format onnx"
        )


def onnx_outputs(path: pathlib.Path, named_inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Runs the ONNX file with onnxruntime on the CPU (inputs by the model's input names);
    outputs in the file's order, which is the model's flat output order."""
    import onnxruntime  # the optional `onnx` extra: `import kbuilder.export` works without it

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # no warnings on stderr for initializers also listed as inputs
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feeds = match_inputs([node.name for node in session.get_inputs()], named_inputs, "ONNX file")
    return [np.asarray(output, "float64") for output in session.run(None, feeds)]
