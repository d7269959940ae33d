"""Multi-head attention (Vaswani et al. 2017, section 3.2.2), Keras's MultiHeadAttention.

Wiring: one input is self-attention (query = value = key = the input); `inputs: [query,
value]` is cross-attention with key = value; `inputs: [query, value, key]` names all three.

Figures, with H heads, key size d_k, value size d_v (default d_k), query/key/value features
C_q, C_k, C_v, output features C_o (default C_q), N_q query positions and N_k key positions:
- parameters: the four projections' kernels, C_q·H·d_k + C_k·H·d_k + C_v·H·d_v + H·d_v·C_o,
  and with `use_bias` their biases, 2·H·d_k + H·d_v + C_o;
- MACs per sample: each projection once per position of its input, N_q·C_q·H·d_k +
  N_k·C_k·H·d_k + N_k·C_v·H·d_v + N_q·H·d_v·C_o, plus the two matmuls of every head:
  the scores Q·Kᵀ, H·N_q·N_k·d_k, and their weighting of the values, H·N_q·N_k·d_v.
  Softmax, scaling and dropout count 0, as activations do elsewhere. (N_k counts the
  positions along the attention axes; on other axes positions meet one to one.)
"""

import math
from typing import Annotated, Any, ClassVar

from pydantic import ConfigDict, Field, field_validator

from kbuilder.spec.base import Name, StrictModel
from kbuilder.spec.fields import (
    Constraint,
    DropoutRate,
    Initializer,
    Regularizer,
    Seed,
    UseBias,
    Width,
)
from kbuilder.spec.figures import GLOBAL_STEP, FieldStep, Params, TensorShape, channels, fmt, positions
from kbuilder.spec.kind import LayerSpec, layer_kind

AttentionAxis = Annotated[int, Field(ge=1, le=7, description="An axis between batch and features.")]
WIRING = "one input (self-attention), [query, value] or [query, value, key]"


@layer_kind("multi_head_attention", keras_class="MultiHeadAttention", category="attention")
class MultiHeadAttention(LayerSpec):
    """Multi-head scaled dot-product attention (Vaswani et al. 2017), as Keras's
    MultiHeadAttention. One input: self-attention; `inputs: [query, value]` or `[query, value,
    key]`: cross-attention. MACs: the Q/K/V/output projections plus the two attention matmuls
    (scores and weighted values) of every head."""

    # `output_shape` is Keras's argument name and a method of every kind: the field keeps
    # Keras's name as its alias (also when written out).
    model_config = ConfigDict(**StrictModel.model_config, serialize_by_alias=True)
    meta_fields: ClassVar[frozenset[str]] = LayerSpec.meta_fields | {"use_causal_mask", "output_features"}

    inputs: list[Name] | None = Field(
        None,
        min_length=1,
        description=f"The attention's inputs: {WIRING}; default: the previous layer (self-attention).",
    )
    num_heads: Width = Field(description="Number of attention heads.")
    key_dim: Width = Field(description="Size of each head's query and key projections.")
    value_dim: Width | None = Field(
        None, description="Size of each head's value projection; default: key_dim."
    )
    dropout: DropoutRate = 0.0
    use_bias: UseBias = True
    output_features: Width | None = Field(
        None,
        alias="output_shape",
        description="Features of the output (Keras's output_shape, one integer); default: the query's.",
    )
    attention_axes: AttentionAxis | list[AttentionAxis] | None = Field(
        None,
        description="Axes attention runs over (counted with the batch axis as 0); default: every axis "
        "between batch and features.",
    )
    use_causal_mask: bool = Field(
        False, description="Each position attends only to itself and earlier ones (a decoder's mask)."
    )
    kernel_initializer: Initializer | None = None
    bias_initializer: Initializer | None = None
    kernel_regularizer: Regularizer | None = None
    bias_regularizer: Regularizer | None = None
    activity_regularizer: Regularizer | None = None
    kernel_constraint: Constraint | None = None
    bias_constraint: Constraint | None = None
    seed: Seed = None

    @field_validator("inputs")
    @classmethod
    def _at_most_three_inputs(cls, inputs: list[str] | None) -> list[str] | None:
        if inputs is not None and len(inputs) > 3:
            raise ValueError(f"multi_head_attention takes {WIRING}; got {len(inputs)} inputs")
        return inputs

    def keras_kwargs(self) -> dict[str, Any]:
        kwargs = super().keras_kwargs()
        if self.output_features is not None:
            kwargs["output_shape"] = self.output_features
        return kwargs

    @staticmethod
    def wiring(inputs: list[Any]) -> tuple[Any, Any, Any]:
        """(query, value, key) from the layer's inputs: value defaults to query, key to value."""
        query = inputs[0]
        value = inputs[1] if len(inputs) > 1 else query
        key = inputs[2] if len(inputs) > 2 else value
        return query, value, key

    def axes(self, rank: int) -> tuple[int, ...]:
        """The attention axes for inputs of `rank` (with the batch axis)."""
        if self.attention_axes is None:
            return tuple(range(1, rank - 1))
        return tuple(self.attention_axes) if isinstance(self.attention_axes, list) else (self.attention_axes,)

    def out_channels(self, inputs: list[int | None]) -> int | None:
        return self.output_features or (inputs[0] if inputs else None)

    def input_problem(self, name: str, inputs: list[TensorShape]) -> str | None:
        query, value, key = self.wiring(inputs)
        where = f"layer '{name}' (multi_head_attention)"
        if len(inputs) > 3:
            return f"{where} takes {WIRING}; gets {len(inputs)} inputs"
        if min(len(query), len(value), len(key)) < 3 or len({len(query), len(value), len(key)}) > 1:
            return (
                f"{where} needs query, value and key of one shape rank, each (positions..., features), "
                f"e.g. a sequence (N, D); gets ({fmt(query[1:])}), ({fmt(value[1:])}), ({fmt(key[1:])})"
            )
        if key[:-1] != value[:-1]:
            return f"{where} needs key and value at the same positions; gets ({fmt(key[1:])}) and ({fmt(value[1:])})"
        axes = self.axes(len(query))
        if any(a >= len(query) - 1 for a in axes):
            return f"{where} attends over axes {list(axes)}, but its inputs have axes 1 to {len(query) - 2} between batch and features"
        others = [a for a in range(1, len(query) - 1) if a not in axes]
        if any(query[a] != value[a] for a in others):
            return (
                f"{where} needs query and value to match on the axes it does not attend over {others}; "
                f"gets ({fmt(query[1:])}) and ({fmt(value[1:])})"
            )
        return None

    def output_shape(self, inputs: list[TensorShape]) -> TensorShape:
        query = inputs[0]
        return (*query[:-1], self.output_features or query[-1])

    def _sizes(self, inputs: list[TensorShape]) -> tuple[int, int, int, int, int]:
        """(heads, d_k, d_v, output features, C_q) of these inputs."""
        query = inputs[0]
        out = self.output_features or channels(query)
        return self.num_heads, self.key_dim, self.value_dim or self.key_dim, out, channels(query)

    def params(self, inputs: list[TensorShape]) -> Params:
        _, value, key = self.wiring(inputs)
        heads, d_k, d_v, out, c_q = self._sizes(inputs)
        kernels = (c_q + channels(key)) * heads * d_k + channels(value) * heads * d_v + heads * d_v * out
        biases = 2 * heads * d_k + heads * d_v + out if self.use_bias else 0
        return Params(kernels + biases)

    def macs(self, inputs: list[TensorShape], output: TensorShape) -> int:
        query, value, key = self.wiring(inputs)
        heads, d_k, d_v, out, c_q = self._sizes(inputs)
        n_q, n_k = positions(query), positions(key)
        projections = n_q * c_q * heads * d_k + n_k * channels(key) * heads * d_k
        projections += n_k * channels(value) * heads * d_v + n_q * heads * d_v * out
        attended = math.prod(int(key[a] or 1) for a in self.axes(len(key)))  # keys each query position meets
        return projections + heads * n_q * attended * (d_k + d_v)

    def field_step(self, inputs: list[TensorShape]) -> FieldStep:
        return GLOBAL_STEP  # every output position sees every attended position
