"""2D convolution with a sparse input->output connection table (LeNet-5's C3)."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from kbuilder.layers import _validation as check

# LeCun et al. 1998, Table I: which of S2's 6 maps feed each of C3's 16 maps.
# Maps 0-5 take 3 contiguous inputs, 6-11 take 4 contiguous inputs, both
# wrapping around (map 4 = {4, 5, 0}); 12-14 take 4 non-contiguous inputs;
# map 15 takes all 6. 60 connections, so C3 has 60 * 25 + 16 = 1,516 params.
LENET5_C3_CONNECTIONS: tuple[tuple[int, ...], ...] = (
    (0, 1, 2),
    (1, 2, 3),
    (2, 3, 4),
    (3, 4, 5),
    (4, 5, 0),
    (5, 0, 1),
    (0, 1, 2, 3),
    (1, 2, 3, 4),
    (2, 3, 4, 5),
    (3, 4, 5, 0),
    (4, 5, 0, 1),
    (5, 0, 1, 2),
    (0, 1, 3, 4),
    (1, 2, 4, 5),
    (0, 2, 3, 5),
    (0, 1, 2, 3, 4, 5),
)
NAMED_TABLES: dict[str, tuple[tuple[int, ...], ...]] = {"lenet5_c3": LENET5_C3_CONNECTIONS}


def _resolve_connections(connections: Any, filters: int) -> tuple[tuple[int, ...], ...]:
    if isinstance(connections, str):
        if connections not in NAMED_TABLES:
            raise ValueError(
                f"`connections` must be a list of input-channel lists or one of "
                f"{sorted(NAMED_TABLES)}, received: {connections!r}"
            )
        table = NAMED_TABLES[connections]
    elif isinstance(connections, (list, tuple)):
        table = tuple(tuple(entry) if isinstance(entry, (list, tuple)) else entry for entry in connections)
    else:
        raise ValueError(
            f"`connections` must be a list with one list of input-channel indices "
            f"per output map, or a table name, received: {connections!r}"
        )
    if len(table) != filters:
        raise ValueError(
            f"`connections` must have one entry per output map (`filters`={filters}), "
            f"received {len(table)} entries: {connections!r}"
        )
    for out_map, entry in enumerate(table):
        valid = (
            isinstance(entry, tuple)
            and len(entry) > 0
            and all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in entry)
        )
        if not valid:
            raise ValueError(
                f"`connections[{out_map}]` must be a non-empty list of non-negative "
                f"input-channel indices, received: {entry!r}"
            )
        if len(set(entry)) != len(entry):
            raise ValueError(
                f"`connections[{out_map}]` lists an input channel twice, received: {list(entry)!r}"
            )
    return table


@keras.saving.register_keras_serializable(package="kbuilder")
class PartialConv2D(keras.layers.Layer):
    """Conv2D where output map `o` only sees the input channels `connections[o]`.

        y[..., o] = activation(b[o] + sum_{i in connections[o]} conv2d(x[..., i], w[o, i]))

    Paper: Y. LeCun, L. Bottou, Y. Bengio, P. Haffner, "Gradient-Based
    Learning Applied to Document Recognition", Proc. IEEE 1998, section II-B
    and Table I (layer C3). `connections="lenet5_c3"` is that table: a partial
    table breaks the symmetry between maps and keeps the parameter count down.

    The layer owns only the connected weights: `kernel` has shape
    `(kh, kw, n_connections)`, with `kernel[..., k]` the k-th (output, input)
    pair in `connections` order (output maps first, then inputs as listed).
    At call time it is scattered (a constant gather, differentiable) into the
    dense `(kh, kw, in, filters)` kernel with zeros elsewhere and fed to
    `keras.ops.conv`, so unconnected weights neither exist nor get gradients.
    Initializers are called with the dense kernel's shape, so fan-in/fan-out
    are those of the equivalent Conv2D, and the connected entries are kept.

    Args:
        filters: positive int, number of output maps.
        kernel_size: int or 2 ints.
        connections: list of `filters` non-empty lists of input-channel indices,
            or the name "lenet5_c3" (needs 6 input channels and filters=16).
        strides: int or 2 ints. Default 1.
        padding: "valid" (default) or "same".
        use_bias: whether to add a trainable bias per output map.
        activation: a Keras activation name/callable, or None (linear).
        kernel_initializer, bias_initializer: Keras initializers (None: the
            defaults glorot_uniform and zeros).
    """

    def __init__(
        self,
        filters: int,
        kernel_size: int | tuple[int, int],
        connections: str | list[list[int]],
        strides: int | tuple[int, int] = 1,
        padding: str = "valid",
        use_bias: bool = True,
        activation: str | None = None,
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.filters = check.positive_int("filters", filters)
        self.kernel_size = check.positive_int_tuple("kernel_size", kernel_size, 2)
        # `table` is the resolved, validated tuple-of-tuples; `connections`
        # keeps the user's form (a table name stays a name) for get_config.
        self.table = _resolve_connections(connections, self.filters)
        self.connections: str | tuple[tuple[int, ...], ...] = (
            connections if isinstance(connections, str) else self.table
        )
        self.strides = check.positive_int_tuple("strides", strides, 2)
        self.padding = check.choice("padding", padding, ("valid", "same"))
        if not isinstance(use_bias, bool):
            raise ValueError(f"`use_bias` must be true or false, received: {use_bias!r}")
        self.use_bias = use_bias
        self.activation = check.activation(activation)
        self.kernel_initializer = check.initializer(kernel_initializer, "glorot_uniform")
        self.bias_initializer = check.initializer(bias_initializer, "zeros")
        self.input_spec = keras.layers.InputSpec(ndim=4)

    @property
    def n_connections(self) -> int:
        return sum(len(entry) for entry in self.table)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        in_channels = check.channels_of("PartialConv2D", input_shape)
        highest = max(max(entry) for entry in self.table)
        if highest >= in_channels:
            raise ValueError(
                f"PartialConv2D `connections` refers to input channel {highest}, "
                f"but the input has {in_channels} channels (input shape "
                f"{tuple(input_shape)})"
            )
        if self.connections == "lenet5_c3" and in_channels != 6:
            raise ValueError(
                f"`connections='lenet5_c3'` needs 6 input channels, received input shape {tuple(input_shape)}"
            )
        self.input_spec = keras.layers.InputSpec(ndim=4, axes={-1: in_channels})
        self._in_channels = in_channels
        # Flat (input, output) position of each connection in the dense
        # (in, filters) plane; every unconnected position points at index
        # n_connections, a zero slice appended to the kernel at call time.
        flat_positions = [i * self.filters + o for o, entry in enumerate(self.table) for i in entry]
        self._connected = np.asarray(flat_positions, dtype="int32")
        gather = np.full(in_channels * self.filters, self.n_connections, dtype="int32")
        gather[self._connected] = np.arange(self.n_connections, dtype="int32")
        self._gather_index = gather
        kh, kw = self.kernel_size
        self.kernel = self.add_weight(
            name="kernel",
            shape=(kh, kw, self.n_connections),
            initializer=self._connected_initializer,
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer=self.bias_initializer)
        self.built = True

    def _connected_initializer(self, shape: tuple[int, ...], dtype: Any = None) -> Any:
        kh, kw = self.kernel_size
        dense = self.kernel_initializer((kh, kw, self._in_channels, self.filters), dtype=dtype)
        dense = ops.reshape(dense, (kh, kw, self._in_channels * self.filters))
        return ops.take(dense, self._connected, axis=2)

    def dense_kernel(self) -> Any:
        """The equivalent `(kh, kw, in, filters)` Conv2D kernel, zeros where unconnected."""
        kh, kw = self.kernel_size
        zero = ops.zeros((kh, kw, 1), dtype=self.kernel.dtype)
        padded = ops.concatenate([ops.convert_to_tensor(self.kernel), zero], axis=2)
        dense = ops.take(padded, self._gather_index, axis=2)
        return ops.reshape(dense, (kh, kw, self._in_channels, self.filters))

    def call(self, inputs: Any) -> Any:
        outputs = ops.conv(
            inputs,
            ops.cast(self.dense_kernel(), inputs.dtype),
            strides=self.strides,
            padding=self.padding,
            data_format="channels_last",
        )
        if self.use_bias:
            outputs = outputs + ops.cast(self.bias, outputs.dtype)
        return self.activation(outputs)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        batch, height, width, _ = input_shape
        spatial: list[int | None] = []
        for size, kernel, stride in zip((height, width), self.kernel_size, self.strides):
            if size is None:
                spatial.append(None)
            elif self.padding == "same":
                spatial.append(-(-size // stride))
            else:
                spatial.append(max(0, (size - kernel) // stride + 1))
        return (batch, spatial[0], spatial[1], self.filters)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "kernel_size": self.kernel_size,
                "connections": (
                    self.connections
                    if isinstance(self.connections, str)
                    else [list(entry) for entry in self.connections]
                ),
                "strides": self.strides,
                "padding": self.padding,
                "use_bias": self.use_bias,
                "activation": keras.activations.serialize(self.activation),
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            }
        )
        return config
