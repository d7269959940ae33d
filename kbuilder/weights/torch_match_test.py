"""match_torch on small models: each conversion gives PyTorch's outputs, each mismatch is an
error located at its spec layer."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from kbuilder.build.model import build
from kbuilder.errors import EXIT_INVALID
from kbuilder.spec import loads_spec
from kbuilder.weights.tensors import SourceTensors
from kbuilder.weights.torch_files import read_torch
from kbuilder.weights.torch_match import WeightsMismatch, match_torch

IMAGE = """name: net
inputs:
  image: {shape: [8, 8, 4]}
layers:
"""


def built(layers: str, head: str = IMAGE):
    return build(loads_spec(head + layers, file="net.yaml"))


def source_of(module: nn.Module, eps: float | None = None) -> SourceTensors:
    state = module.state_dict()
    arrays = {k: v.float().numpy() for k, v in state.items() if not k.endswith("num_batches_tracked")}
    return SourceTensors("net.pt", "torch", arrays)


def randomized(module: nn.Module) -> nn.Module:
    torch.manual_seed(0)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.normal_(0.0, 0.5)
        for layer in module.modules():
            if isinstance(layer, nn.BatchNorm2d):
                layer.running_mean.normal_(0.0, 0.3)
                layer.running_var.uniform_(0.5, 2.0)
    return module.eval()


def loaded(spec, module: nn.Module, **options):
    plan = match_torch(spec.model, source_of(module), graph=spec.graph, **options)
    for row in plan.loaded():
        spec.model.get_layer(row.layer).set_weights(list(row.arrays))
    return plan


def same_outputs(spec, module: nn.Module, shape=(2, 4, 8, 8)) -> None:
    images = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    with torch.no_grad():
        expected = module(torch.from_numpy(images)).numpy()
    keras_images = np.moveaxis(images, 1, -1)
    got = np.asarray(spec.model(keras_images, training=False))
    if expected.ndim > 2:
        expected = np.moveaxis(expected, 1, -1)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())


def mismatch(spec, module, *words: str, **options) -> WeightsMismatch:
    with pytest.raises(WeightsMismatch) as caught:
        match_torch(spec.model, source_of(module), graph=spec.graph, **options)
    assert caught.value.exit_code == EXIT_INVALID
    for word in words:
        assert word in str(caught.value)
    return caught.value


CNN = """  - conv2d: {name: conv, filters: 6, kernel_size: 3, groups: 2, padding: same}
  - batch_norm: {name: bn, epsilon: 1.0e-5}
  - depthwise_conv2d: {name: dw, kernel_size: 3, depth_multiplier: 2}
  - flatten: {name: flat}
  - dropout: {name: drop, rate: 0.5}
  - dense: {name: head, units: 5}
"""


def cnn(classes: int = 5) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(4, 6, 3, padding=1, groups=2),
        nn.BatchNorm2d(6),
        nn.Conv2d(6, 12, 3, groups=6),
        nn.Flatten(),
        nn.Dropout(),
        nn.Linear(12 * 6 * 6, classes),
    )


def test_grouped_depthwise_batch_norm_and_flatten_order():
    spec, module = built(CNN), randomized(cnn())
    plan = loaded(spec, module)
    assert [row.layer for row in plan.loaded()] == ["conv", "bn", "dw", "head"]
    notes = {row.layer: row.note for row in plan.rows}
    assert notes["conv"] == "OIHW -> HWIO"
    assert notes["dw"] == "depthwise (C*m, 1, *k) -> (*k, C, m)"
    assert "flatten order (12, 6, 6) -> (6, 6, 12)" in notes["head"]
    same_outputs(spec, module)


def test_read_file_loads_too(tmp_path):
    spec, module = built(CNN), randomized(cnn())
    path = tmp_path / "net.pt"
    torch.save(module.state_dict(), path)
    plan = match_torch(spec.model, read_torch(path), graph=spec.graph)
    assert plan.match == "order" and plan.counts() == {"loaded": 4, "new": 0, "skipped": 0}


def test_conv1d_flatten_order():
    head = "name: text\ninputs:\n  tokens: {shape: [10, 3]}\nlayers:\n"
    spec = built(
        "  - conv1d: {name: c, filters: 4, kernel_size: 3}\n  - flatten: {}\n  - dense: {name: d, units: 2}\n",
        head,
    )
    module = randomized(nn.Sequential(nn.Conv1d(3, 4, 3), nn.Flatten(), nn.Linear(32, 2)))
    loaded(spec, module)
    same_outputs(spec, module, shape=(2, 3, 10))


def test_epsilon_differs_located_with_fix():
    spec = built(CNN.replace("1.0e-5", "1.0e-3"))
    error = mismatch(
        spec,
        randomized(cnn()),
        "net.yaml:6:",
        "layer 'bn' (batch_norm) has epsilon 0.001",
        "`epsilon: 1e-05`",
    )
    assert len(error.problems) == 1


def test_epsilon_option():
    spec, module = built(CNN.replace("1.0e-5", "1.0e-3")), randomized(cnn())
    for layer in module.modules():
        if isinstance(layer, nn.BatchNorm2d):
            layer.eps = 1e-3
    loaded(spec, module, epsilon=1e-3)
    same_outputs(spec, module)
    assert loaded(spec, module, epsilon=None).counts()["loaded"] == 4


def test_bias_missing_or_extra():
    without_bias = cnn()
    without_bias[0] = nn.Conv2d(4, 6, 3, padding=1, groups=2, bias=False)
    mismatch(
        built(CNN),
        without_bias,
        "net.yaml:5:",
        "no 'bias' (a PyTorch layer with bias=False)",
        "`use_bias: false`",
    )
    spec = built(CNN.replace("groups: 2,", "groups: 2, use_bias: false,"))
    mismatch(spec, cnn(), "torch tensor '0.bias' is not used: set `use_bias: true`")


def test_shape_mismatch_names_both_shapes():
    mismatch(
        built(CNN.replace("filters: 6", "filters: 8").replace("units: 5", "units: 5")),
        cnn(),
        "layer 'conv' (conv2d) expects kernel of shape (3, 3, 2, 8), torch tensor '0.weight' has (6, 2, 3, 3)",
    )


def test_new_head_excluded_and_leftover_or_missing_modules():
    spec = built(CNN.replace("units: 5", "units: 3"))
    mismatch(spec, cnn(), "expects kernel of shape (432, 3)")
    plan = loaded(spec, randomized(cnn()), exclude=["head"])
    assert plan.rows[-1].status == "new" and plan.rows[-1].note == "excluded; '5' not used"
    headless = nn.Sequential(*list(cnn())[:3])
    assert loaded(spec, headless, exclude=["head"]).counts() == {"loaded": 3, "new": 1, "skipped": 0}
    mismatch(
        spec, headless, "net.yaml:10:", "layer 'head' has weights but the source has no module left for it"
    )
    extra = nn.Sequential(*cnn(), nn.Linear(5, 2))
    mismatch(built(CNN), extra, "1 module(s) left over after the spec's 4 weighted layers: '6'")


def test_include_skips_the_rest():
    plan = loaded(built(CNN), randomized(cnn()), include=["conv", "bn"])
    assert [row.status for row in plan.rows] == ["loaded", "loaded", "skipped", "skipped"]


def test_map_pairs_its_globs_first():
    module = randomized(cnn())
    shuffled = SourceTensors("net.pt", "torch", dict(reversed(source_of(module).tensors.items())))
    spec = built(CNN)
    with pytest.raises(WeightsMismatch):
        match_torch(spec.model, shuffled, graph=spec.graph)
    mapping = {"conv": "0", "bn": "1", "dw": "2", "h*": "*"}
    plan = match_torch(spec.model, shuffled, graph=spec.graph, mapping=mapping)
    assert plan.match == "map" and plan.counts()["loaded"] == 4
    with pytest.raises(WeightsMismatch, match=r"map\['\*'\]: selects 4 weighted spec layers"):
        match_torch(spec.model, shuffled, graph=spec.graph, mapping={"*": "[01]"})


def test_kind_without_conversion():
    spec = built("  - separable_conv2d: {name: sep, filters: 2, kernel_size: 3}\n")
    mismatch(spec, nn.Sequential(nn.Conv2d(4, 2, 3)), "no PyTorch conversion for SeparableConv2D")


def test_a_repeated_mistake_is_one_problem():
    spec = built("  - repeat: {name: r, times: 3, layers: [conv2d: {name: c, filters: 4, kernel_size: 1}]}\n")
    module = nn.Sequential(*(nn.Conv2d(4, 4, 1, bias=False) for _ in range(3)))
    error = mismatch(spec, module, "net.yaml:5:", "(and 2 more layers from this line)")
    assert len(error.problems) == 1


class Tagger(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(20, 6)
        self.norm = nn.LayerNorm(6)
        self.out = nn.Linear(6, 3)

    def forward(self, tokens):
        return self.out(self.norm(self.embed(tokens)))


def test_embedding_and_layer_norm():
    head = "name: tagger\ninputs:\n  tokens: {shape: [7], dtype: int32}\nlayers:\n"
    layers = (
        "  - embedding: {name: e, input_dim: 20, output_dim: 6}\n"
        "  - layer_norm: {name: n, epsilon: 1.0e-5}\n"
        "  - dense: {name: d, units: 3}\n"
    )
    spec, module = built(layers, head), randomized(Tagger())
    loaded(spec, module)
    tokens = np.random.default_rng(0).integers(0, 20, size=(2, 7))
    with torch.no_grad():
        expected = module(torch.from_numpy(tokens)).numpy()
    np.testing.assert_allclose(
        np.asarray(spec.model(tokens.astype(np.int32))), expected, rtol=1e-5, atol=1e-5
    )
    mismatch(
        built(layers.replace("1.0e-5", "1.0e-3"), head), module, "layer 'n' (layer_norm) has epsilon 0.001"
    )
