"""The token-sequence kinds transformers need around attention: learned positional
embeddings, a class token and the selection of one token. Their Keras layers are in
kbuilder/layers/ (PositionEmbedding, ClassToken, SelectToken). A ViT (Dosovitskiy et al.
2021, eq. 1 and 4) is: patches -> `class_token` -> `position_embedding` -> encoder blocks
-> `layer_norm` -> `select_token` -> dense."""

from pydantic import Field

from kbuilder.spec.fields import MAX_DIMENSION, Initializer
from kbuilder.spec.figures import Params, TensorShape, fmt
from kbuilder.spec.kind import LayerSpec, layer_kind


def _sequence_problem(name: str, kind: str, shape: TensorShape) -> str | None:
    if len(shape) != 3 or shape[-1] is None:
        return (
            f"layer '{name}' ({kind}) needs a sequence (positions, features) with known features; "
            f"gets ({fmt(shape[1:])}): reshape an image's patches first, e.g. `reshape: [-1, 768]`"
        )
    return None


@layer_kind("position_embedding", keras_class="kbuilder:PositionEmbedding", category="attention")
class PositionEmbedding(LayerSpec):
    """Adds a learned table of the input's shape (one vector per position, e.g. (197, 768) in
    ViT-B/16) to the input: learned positional embeddings."""

    embeddings_initializer: Initializer | None = Field(
        None, description="How the table starts; default glorot_uniform (ViT: random_normal, stddev 0.02)."
    )
    keeps_shape = True

    def input_problem(self, name: str, inputs: list[TensorShape]) -> str | None:
        if any(d is None for d in inputs[0][1:]):
            return (
                f"layer '{name}' (position_embedding) needs an input of known size to hold one "
                f"vector per position; gets ({fmt(inputs[0][1:])})"
            )
        return None

    def params(self, inputs: list[TensorShape]) -> Params:
        size = 1
        for dim in inputs[0][1:]:
            size *= int(dim or 1)
        return Params(size)


@layer_kind("class_token", keras_class="kbuilder:ClassToken", category="attention")
class ClassToken(LayerSpec):
    """Prepends one learned token to a sequence, (N, D) -> (N + 1, D): BERT's [CLS], ViT's
    x_class; `select_token` takes its output after the encoder."""

    token_initializer: Initializer | None = Field(
        None, description="How the token starts; default zeros (as torchvision's ViT)."
    )

    def input_problem(self, name: str, inputs: list[TensorShape]) -> str | None:
        return _sequence_problem(name, "class_token", inputs[0])

    def output_shape(self, inputs: list[TensorShape]) -> TensorShape:
        _, length, features = inputs[0]
        return (None, None if length is None else length + 1, features)

    def params(self, inputs: list[TensorShape]) -> Params:
        return Params(int(inputs[0][-1] or 1))


@layer_kind("select_token", shorthand="index", keras_class="kbuilder:SelectToken", category="attention")
class SelectToken(LayerSpec):
    """One position of a sequence, (N, D) -> (D): `- select_token: 0` reads the class token."""

    index: int = Field(
        0,
        ge=-MAX_DIMENSION,
        le=MAX_DIMENSION,
        description="The position: 0 is the first (the class token), -1 the last.",
    )

    def input_problem(self, name: str, inputs: list[TensorShape]) -> str | None:
        shape = inputs[0]
        if len(shape) < 3:
            return f"layer '{name}' (select_token) needs a sequence (positions, features); gets ({fmt(shape[1:])})"
        length = shape[1]
        if length is not None and not -length <= self.index < length:
            return (
                f"layer '{name}' (select_token) takes position {self.index} of a sequence of {length}; "
                f"use an index from {-length} to {length - 1}"
            )
        return None

    def output_shape(self, inputs: list[TensorShape]) -> TensorShape:
        return (None, *inputs[0][2:])
