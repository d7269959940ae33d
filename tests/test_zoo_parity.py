"""Structure parity of the model zoo with keras.applications and with the papers' tables.

VGG-16, ResNet-50 and DenseNet-121 are compared stage by stage with
keras.applications (weights=None, include_top=True, 224x224x3, 1000 classes): at each
stage boundary the output shape and the cumulative parameter count (the parameters of
every layer the boundary depends on) must be the same. AlexNet and GoogLeNet have no
keras.applications counterpart; their layer output shapes are compared with the
tables of the papers and of the notes, hard-coded below with their sources.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import keras
import pytest

from kbuilder import api
from tests.conftest import SPECS

pytestmark = pytest.mark.slow

# -- helpers --------------------------------------------------------------------------


def spec_output(built, name: str):
    """The Keras output tensor of a spec layer or composite (block, repeat, ...)."""
    return built.model.get_layer(built.graph.resolve(name)).output


def shape_of(tensor) -> tuple[int, ...]:
    return tuple(int(d) for d in tensor.shape[1:])


def params_up_to(model, tensor) -> int:
    """Parameters of every layer `tensor` depends on: a sub-model from the inputs to it
    shares the layers (no new weights), so its count_params() is the cumulative count."""
    return keras.Model(model.inputs, tensor).count_params()


def weight_count(weights) -> int:
    return sum(int(w.numpy().size) for w in weights)


# -- keras.applications parity ----------------------------------------------------------


@dataclass(frozen=True)
class Reference:
    factory: Callable[..., keras.Model]
    # (spec layer or composite, keras.applications layer) at each stage boundary
    boundaries: tuple[tuple[str, str], ...]


def _resnet50_boundaries() -> tuple[tuple[str, str], ...]:
    """conv1 (after BN-ReLU) and the max pool, every bottleneck block's output
    conv{stage}_block{b}_out (Table 1 of He et al.: 3, 4, 6, 3 blocks), the stage
    outputs conv2_x..conv5_x, global pooling and the classifier."""
    pairs = [("conv1_relu", "conv1_relu"), ("pool1", "pool1_pool")]
    for stage, blocks in ((2, 3), (3, 4), (4, 6), (5, 3)):
        pairs.append((f"conv{stage}_x-block1", f"conv{stage}_block1_out"))
        pairs += [
            (f"conv{stage}_x-blocks-{b - 2}-block", f"conv{stage}_block{b}_out") for b in range(2, blocks + 1)
        ]
        pairs.append((f"conv{stage}_x", f"conv{stage}_block{blocks}_out"))
    return tuple(pairs + [("avg_pool", "avg_pool"), ("predictions", "predictions")])


def _densenet121_boundaries() -> tuple[tuple[str, str], ...]:
    """The stem, each dense block (keras: conv{n}_block{last}_concat) and each
    transition (keras: pool{n}_pool), the final BN-ReLU, global pooling, classifier."""
    pairs = [("conv1_relu", "conv1_relu"), ("pool1", "pool1")]
    for n, size in enumerate((6, 12, 24, 16), start=1):
        pairs.append((f"dense_block{n}", f"conv{n + 1}_block{size}_concat"))
        if n < 4:
            pairs.append((f"transition{n}", f"pool{n + 1}_pool"))
    return tuple(pairs + [("relu", "relu"), ("avg_pool", "avg_pool"), ("predictions", "predictions")])


REFERENCES = {
    # block1..block5: the pool closing each VGG block, then the classifier layers.
    "vgg16": Reference(
        keras.applications.VGG16,
        tuple((f"block{i}", f"block{i}_pool") for i in range(1, 6))
        + (("flatten", "flatten"), ("fc1", "fc1"), ("fc2", "fc2"), ("predictions", "predictions")),
    ),
    "resnet50": Reference(keras.applications.ResNet50, _resnet50_boundaries()),
    "densenet121": Reference(keras.applications.DenseNet121, _densenet121_boundaries()),
}


@pytest.fixture(scope="module", params=sorted(REFERENCES))
def pair(request):
    """The spec's model and its keras.applications twin, built once per module."""
    name = request.param
    built = api.build(SPECS / f"{name}.yaml")
    reference = REFERENCES[name].factory(
        weights=None, include_top=True, input_shape=(224, 224, 3), classes=1000
    )
    yield name, built, reference
    del built, reference
    keras.backend.clear_session()


def test_stage_boundaries_match_keras_applications(pair):
    name, built, reference = pair
    mismatches = []
    for ours, theirs in REFERENCES[name].boundaries:
        mine, other = spec_output(built, ours), reference.get_layer(theirs).output
        got = (shape_of(mine), params_up_to(built.model, mine))
        want = (shape_of(other), params_up_to(reference, other))
        if got != want:
            mismatches.append(f"{ours} vs {theirs}: shape, cumulative params {got} != {want}")
    assert mismatches == []


def test_totals_match_keras_applications(pair):
    _, built, reference = pair
    model = built.model
    assert model.count_params() == reference.count_params()
    assert weight_count(model.trainable_weights) == weight_count(reference.trainable_weights)
    assert weight_count(model.non_trainable_weights) == weight_count(reference.non_trainable_weights)
    assert shape_of(model.output) == shape_of(reference.output) == (1000,)


def test_boundaries_cover_every_stage():
    """The comparison is stage by stage, not only the totals."""
    assert len(REFERENCES["vgg16"].boundaries) == 9
    assert len(REFERENCES["resnet50"].boundaries) == 2 + (3 + 4 + 6 + 3) + 4 + 2
    assert len(REFERENCES["densenet121"].boundaries) == 2 + 4 + 3 + 3


# -- the papers' tables -------------------------------------------------------------------


@pytest.fixture(scope="module")
def alexnet():
    built = api.build(SPECS / "alexnet.yaml")
    yield built
    del built
    keras.backend.clear_session()


# Krizhevsky, Sutskever, Hinton 2012, Fig. 2 and section 3.5, with the sizes of the
# AlexNet table in notes 004 (input 227x227x3; C1 55x55x96, S2 27x27x96, C3 27x27x256,
# S4 13x13x256, C5 13x13x384, C6 13x13x384, C7 13x13x256, F8 6x6x256, F9 4096,
# F10 4096, output 1000).
ALEXNET_TABLE = {
    "conv1": (55, 55, 96),
    "pool1": (27, 27, 96),
    "conv2": (27, 27, 256),
    "pool2": (13, 13, 256),
    "conv3": (13, 13, 384),
    "conv4": (13, 13, 384),
    "conv5": (13, 13, 256),
    "pool5": (6, 6, 256),
    "fc6": (4096,),
    "fc7": (4096,),
    "fc8": (1000,),
}
# Section 3.5: "96 kernels of size 11x11x3", "256 kernels of size 5x5x48", "384 kernels
# of size 3x3x256", "384 kernels of size 3x3x192", "256 kernels of size 3x3x192": the
# kernel depth halves where a layer only sees its own GPU's maps (the two-GPU split).
ALEXNET_KERNELS = {
    "conv1": (11, 11, 3, 96),
    "conv2": (5, 5, 48, 256),
    "conv3": (3, 3, 256, 384),
    "conv4": (3, 3, 192, 384),
    "conv5": (3, 3, 192, 256),
}


def test_alexnet_matches_the_paper_and_notes_table(alexnet):
    assert shape_of(alexnet.model.input) == (227, 227, 3)
    got = {name: shape_of(spec_output(alexnet, name)) for name in ALEXNET_TABLE}
    assert got == ALEXNET_TABLE


def test_alexnet_kernels_are_split_across_two_gpus(alexnet):
    got = {name: tuple(alexnet.model.get_layer(name).kernel.shape) for name in ALEXNET_KERNELS}
    assert got == ALEXNET_KERNELS


# The PyTorch code of notes 000 (torchvision's AlexNet): nn.Conv2d(3, 64, 11, stride=4,
# padding=2), MaxPool2d(3, 2), Conv2d(64, 192, 5, padding=2), MaxPool2d(3, 2),
# Conv2d(192, 384, 3, padding=1), Conv2d(384, 256, 3, padding=1), Conv2d(256, 256, 3,
# padding=1), MaxPool2d(3, 2), then Linear(256 * 6 * 6, 4096), Linear(4096, 4096),
# Linear(4096, 1000), on 224x224x3 images.
ALEXNET_TORCHVISION_TABLE = {
    "conv1": ((55, 55, 64), (11, 11, 3, 64)),
    "pool1": ((27, 27, 64), None),
    "conv2": ((27, 27, 192), (5, 5, 64, 192)),
    "pool2": ((13, 13, 192), None),
    "conv3": ((13, 13, 384), (3, 3, 192, 384)),
    "conv4": ((13, 13, 256), (3, 3, 384, 256)),
    "conv5": ((13, 13, 256), (3, 3, 256, 256)),
    "pool5": ((6, 6, 256), None),
    "flatten": ((256 * 6 * 6,), None),
    "fc6": ((4096,), (256 * 6 * 6, 4096)),
    "fc7": ((4096,), (4096, 4096)),
    "fc8": ((1000,), (4096, 1000)),
}


def test_alexnet_torchvision_matches_the_notes_code():
    built = api.build(SPECS / "alexnet_torchvision.yaml")
    assert shape_of(built.model.input) == (224, 224, 3)
    got = {
        name: (
            shape_of(spec_output(built, name)),
            tuple(built.model.get_layer(name).kernel.shape) if kernel else None,
        )
        for name, (_, kernel) in ALEXNET_TORCHVISION_TABLE.items()
    }
    assert got == ALEXNET_TORCHVISION_TABLE


@pytest.fixture(scope="module")
def googlenet():
    built = api.build(SPECS / "googlenet.yaml")
    yield built
    del built
    keras.backend.clear_session()


# Szegedy et al. 2014, "Going Deeper with Convolutions", Table 1: output size of each
# row (conv1 7x7/2, max pool 3x3/2, conv2 3x3/1 (after its 1x1 reduce), max pool,
# inception 3a-3b, max pool, 4a-4e, max pool, 5a-5b, avg pool 7x7/1, linear, softmax).
GOOGLENET_TABLE = {
    "conv1": (112, 112, 64),
    "pool1": (56, 56, 64),
    "conv2": (56, 56, 192),
    "pool2": (28, 28, 192),
    "inception_3a": (28, 28, 256),
    "inception_3b": (28, 28, 480),
    "pool3": (14, 14, 480),
    "inception_4a": (14, 14, 512),
    "inception_4b": (14, 14, 512),
    "inception_4c": (14, 14, 512),
    "inception_4d": (14, 14, 528),
    "inception_4e": (14, 14, 832),
    "pool4": (7, 7, 832),
    "inception_5a": (7, 7, 832),
    "inception_5b": (7, 7, 1024),
    "avg_pool": (1, 1, 1024),
    "linear": (1, 1, 1000),
}
# Table 1's filter columns: #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj.
GOOGLENET_MODULES = {
    "inception_3a": (64, 96, 128, 16, 32, 32),
    "inception_3b": (128, 128, 192, 32, 96, 64),
    "inception_4a": (192, 96, 208, 16, 48, 64),
    "inception_4b": (160, 112, 224, 24, 64, 64),
    "inception_4c": (128, 128, 256, 24, 64, 64),
    "inception_4d": (112, 144, 288, 32, 64, 64),
    "inception_4e": (256, 160, 320, 32, 128, 128),
    "inception_5a": (256, 160, 320, 32, 128, 128),
    "inception_5b": (384, 192, 384, 48, 128, 128),
}


def test_googlenet_matches_table_1(googlenet):
    got = {}
    for name in GOOGLENET_TABLE:
        shape = shape_of(spec_output(googlenet, name))
        # Global pooling and the dense layer drop the 1x1 spatial dimensions the
        # table writes: (1024,) stands for 1x1x1024.
        got[name] = (1, 1) + shape if len(shape) == 1 else shape
    assert got == GOOGLENET_TABLE


def test_googlenet_inception_modules_have_table_1_filters(googlenet):
    graph = googlenet.graph
    got = {}
    for module in GOOGLENET_MODULES:
        # The module's concat merges (1x1, 3x3, 5x5, pool proj); the 3x3 and 5x5
        # convolutions read their 1x1 reduce layers.
        one, three, five, proj = (graph.node(n) for n in graph.node(module).inputs)
        three_reduce, five_reduce = (graph.node(n.inputs[0]) for n in (three, five))
        got[module] = tuple(n.spec.filters for n in (one, three_reduce, three, five_reduce, five, proj))
    assert got == GOOGLENET_MODULES


def test_googlenet_has_no_auxiliary_heads_and_one_output(googlenet):
    assert len(googlenet.model.outputs) == 1
    assert sum(1 for n in googlenet.graph.nodes if n.kind == "dense") == 1


# -- ViT-B/16 against torchvision's vit_b_16 -----------------------------------------------

# torchvision.models.vit_b_16 (torchvision/models/vision_transformer.py): parameters per
# stage, from its modules (conv_proj, class_token, encoder.pos_embedding, 12 x
# encoder.layers.encoder_layer_i, encoder.ln, heads.head); 86,567,656 in all, as its
# model table states. Each encoder layer: ln_1 1,536 + self_attention (in_proj 768 x 2304
# + 2304, out_proj 768 x 768 + 768) 2,362,368 + ln_2 1,536 + mlp (768 x 3072 + 3072,
# 3072 x 768 + 768) 4,722,432 = 7,087,872.
VIT_B16_STAGES = {
    "conv_proj": ((14, 14, 768), 590_592),
    "patches": ((196, 768), 0),
    "class_token": ((197, 768), 768),
    "pos_embedding": ((197, 768), 151_296),
    **{f"encoder-{i}-layer": ((197, 768), 7_087_872) for i in range(12)},
    "encoder_norm": ((197, 768), 1_536),
    "class_output": ((768,), 0),
    "head": ((1000,), 769_000),
}
TORCHVISION_VIT_B16_PARAMS = 86_567_656


def torch_vit_b16_stages() -> dict[str, tuple[tuple[int, ...], int]]:
    """torchvision's vit_b_16 rebuilt from torch.nn modules as its source composes them
    (torchvision itself is not a dependency), run on one image: each stage's output shape
    (channels last, as Keras's) and its parameters."""
    import torch  # a dev dependency (the PyTorch-backend tests); only this check needs it here
    from torch import nn

    class EncoderBlock(nn.Module):  # torchvision's EncoderBlock, dropouts 0
        def __init__(self) -> None:
            super().__init__()
            self.ln_1 = nn.LayerNorm(768, eps=1e-6)
            self.self_attention = nn.MultiheadAttention(768, 12, batch_first=True)
            self.ln_2 = nn.LayerNorm(768, eps=1e-6)
            self.mlp = nn.Sequential(nn.Linear(768, 3072), nn.GELU(), nn.Linear(3072, 768))

        def forward(self, x):
            y = self.ln_1(x)
            x = x + self.self_attention(y, y, y, need_weights=False)[0]
            return x + self.mlp(self.ln_2(x))

    def count(*parts) -> int:
        return sum(
            p.numel()
            for part in parts
            for p in (part.parameters() if hasattr(part, "parameters") else [part])
        )

    conv_proj = nn.Conv2d(3, 768, kernel_size=16, stride=16)
    class_token = nn.Parameter(torch.zeros(1, 1, 768))
    pos_embedding = nn.Parameter(torch.empty(1, 197, 768).normal_(std=0.02))
    layers = [EncoderBlock() for _ in range(12)]
    ln, head = nn.LayerNorm(768, eps=1e-6), nn.Linear(768, 1000)
    stages = {}
    with torch.no_grad():
        x = conv_proj(torch.zeros(1, 3, 224, 224))
        stages["conv_proj"] = (tuple(x.permute(0, 2, 3, 1).shape[1:]), count(conv_proj))
        x = x.reshape(1, 768, 196).permute(0, 2, 1)  # torchvision's _process_input
        stages["patches"] = (tuple(x.shape[1:]), 0)
        x = torch.cat([class_token.expand(1, -1, -1), x], dim=1)
        stages["class_token"] = (tuple(x.shape[1:]), count(class_token))
        x = x + pos_embedding
        stages["pos_embedding"] = (tuple(x.shape[1:]), count(pos_embedding))
        for i, layer in enumerate(layers):
            x = layer(x)
            stages[f"encoder-{i}-layer"] = (tuple(x.shape[1:]), count(layer))
        x = ln(x)
        stages["encoder_norm"] = (tuple(x.shape[1:]), count(ln))
        x = x[:, 0]
        stages["class_output"] = (tuple(x.shape[1:]), 0)
        stages["head"] = (tuple(head(x).shape[1:]), count(head))
    return stages


@pytest.fixture(scope="module")
def vit_b16():
    built = api.build(SPECS / "vit_b16.yaml")
    yield built
    del built
    keras.backend.clear_session()


def test_vit_b16_matches_torchvision_stage_by_stage(vit_b16):
    """Output shape and the stage's own parameters (the growth of the cumulative count)."""
    got, before = {}, 0
    for name in VIT_B16_STAGES:
        tensor = spec_output(vit_b16, name)
        cumulative = params_up_to(vit_b16.model, tensor)
        got[name], before = (shape_of(tensor), cumulative - before), cumulative
    assert got == VIT_B16_STAGES
    assert torch_vit_b16_stages() == VIT_B16_STAGES


def test_vit_b16_totals_match_torchvision(vit_b16):
    model = vit_b16.model
    assert model.count_params() == TORCHVISION_VIT_B16_PARAMS
    assert sum(params for _, params in VIT_B16_STAGES.values()) == TORCHVISION_VIT_B16_PARAMS
    assert weight_count(model.non_trainable_weights) == 0
    assert shape_of(model.output) == (1000,)


def test_vit_b16_encoder_layers_are_pre_norm_with_torchvision_epsilon(vit_b16):
    """Each residual branch normalizes its input (epsilon 1e-6) and adds the branch to the
    unnormalized input (pre-norm, eq. 2-3); attention is 12 heads of 64."""
    graph = vit_b16.graph
    for i in range(12):
        for branch, norm in (("attention", "ln_1"), ("mlp", "ln_2")):
            prefix = f"encoder-{i}-layer-{branch}"
            layer = vit_b16.model.get_layer(f"{prefix}-{norm}")
            assert isinstance(layer, keras.layers.LayerNormalization) and layer.epsilon == 1e-6
            assert graph.node(f"{prefix}-{norm}").inputs[0] in graph.node(f"{prefix}-add").inputs
        attention = vit_b16.model.get_layer(f"encoder-{i}-layer-attention-self_attention")
        assert (attention.num_heads, attention.key_dim) == (12, 64)
