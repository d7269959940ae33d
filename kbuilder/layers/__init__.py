"""Custom Keras 3 layers for classic architectures (LeNet-5, AlexNet, Maxout) and for
transformers (learned positional embeddings, the class token and its selection).

Importing this package registers every layer with Keras's serialization
framework under the "kbuilder" package (e.g. "kbuilder>PartialConv2D"), so a
`.keras` file that uses them loads with `keras.saving.load_model(path,
safe_mode=True)` once `kbuilder.layers` has been imported.

All layers use `keras.ops` only and run on the TensorFlow, JAX and PyTorch
backends. Image layers expect channels-last (NHWC) inputs.
"""

from kbuilder.layers.class_token import ClassToken
from kbuilder.layers.layer_scale import LayerScale
from kbuilder.layers.lrn import LocalResponseNormalization
from kbuilder.layers.maxout import Maxout
from kbuilder.layers.partial_conv2d import LENET5_C3_CONNECTIONS, PartialConv2D
from kbuilder.layers.position_embedding import PositionEmbedding
from kbuilder.layers.rbf import EuclideanRBF
from kbuilder.layers.scaled_add import ScaledAdd
from kbuilder.layers.scaled_tanh import ScaledTanh
from kbuilder.layers.select_token import SelectToken
from kbuilder.layers.trainable_subsampling import TrainableSubsampling

__all__ = [
    "LENET5_C3_CONNECTIONS",
    "ClassToken",
    "EuclideanRBF",
    "LayerScale",
    "LocalResponseNormalization",
    "Maxout",
    "PartialConv2D",
    "PositionEmbedding",
    "ScaledAdd",
    "ScaledTanh",
    "SelectToken",
    "TrainableSubsampling",
]
