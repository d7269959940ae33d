"""torchvision's AlexNet, VGG-16 and ResNet-50 state_dicts load into the zoo specs by layer order
and give the same outputs.

torchvision's wheel does not load against the CPU build of torch here (`operator
torchvision::nms does not exist`), so the three models are written below in torch with
torchvision's attribute names and layouts (torchvision/models/alexnet.py, vgg.py, resnet.py;
note 000 prints AlexNet's). Seeded random weights, random batch-norm statistics (so inference
-mode batch norm is exercised), `torch.save(state_dict)`, `read_torch` + `match_torch`, then
both models on the same random images (NCHW for torch, NHWC for Keras): per sample, the
largest difference over the largest output must stay under 1e-5.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from kbuilder.build.model import build
from kbuilder.spec import load_spec
from kbuilder.weights.torch_files import read_torch
from kbuilder.weights.torch_match import match_torch
from tests.conftest import SPECS

TOLERANCE = 1e-5  # the export tolerance: per sample, max |difference| / max |output|


class AlexNet(nn.Module):
    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(),
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


class VGG16(nn.Module):
    def __init__(self, num_classes: int = 1000):
        super().__init__()
        layers: list = []
        channels = 3
        for width in (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"):
            if width == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(channels, width, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
                channels = width
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096),
            nn.ReLU(True),
            nn.Dropout(),
            nn.Linear(4096, 4096),
            nn.ReLU(True),
            nn.Dropout(),
            nn.Linear(4096, num_classes),
        )

    def penultimate(self, x):
        return self.classifier[:5](torch.flatten(self.avgpool(self.features(x)), 1))

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class ResNet50(nn.Module):
    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(64, 3)
        self.layer2 = self._make_layer(128, 4, stride=2)
        self.layer3 = self._make_layer(256, 6, stride=2)
        self.layer4 = self._make_layer(512, 3, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * 4, num_classes)

    def _make_layer(self, planes: int, blocks: int, stride: int = 1):
        downsample = nn.Sequential(
            nn.Conv2d(self.inplanes, planes * 4, kernel_size=1, stride=stride, bias=False),
            nn.BatchNorm2d(planes * 4),
        )
        layers = [Bottleneck(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * 4
        layers += [Bottleneck(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def penultimate(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)

    def forward(self, x):
        return self.fc(self.penultimate(x))


def seeded(module, seed: int = 0):
    """Random weights (torch's own initializers, seeded) and random batch-norm statistics."""
    torch.manual_seed(seed)
    model = module()
    with torch.no_grad():
        for layer in model.modules():
            if isinstance(layer, nn.BatchNorm2d):
                layer.weight.uniform_(0.5, 1.5)
                layer.bias.normal_(0.0, 0.1)
                layer.running_mean.normal_(0.0, 0.1)
                layer.running_var.uniform_(0.5, 1.5)
    return model.eval()


def apply_plan(model, plan) -> None:
    for row in plan.loaded():
        model.get_layer(row.layer).set_weights(list(row.arrays))


def relative_difference(expected: np.ndarray, got: np.ndarray) -> float:
    """The worst sample's max |difference| / max |expected|."""
    flat_e, flat_g = expected.reshape(len(expected), -1), got.reshape(len(got), -1)
    return float((np.abs(flat_e - flat_g).max(axis=1) / np.abs(flat_e).max(axis=1)).max())


def load_into(spec_name: str, torch_model, tmp_path, overrides=()):
    path = tmp_path / f"{spec_name}.pt"
    torch.save(torch_model.state_dict(), path)
    built = build(load_spec(SPECS / f"{spec_name}.yaml", overrides=overrides))
    plan = match_torch(built.model, read_torch(path), graph=built.graph)
    assert plan.counts()["loaded"] == len([layer for layer in built.model.layers if layer.weights])
    apply_plan(built.model, plan)
    return built.model, plan


def outputs(keras_model, layer: str, images: np.ndarray) -> np.ndarray:
    probe = keras.Model(keras_model.input, keras_model.get_layer(layer).output)
    return np.asarray(probe(images.transpose(0, 2, 3, 1), training=False))


def torch_run(function, images: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return function(torch.from_numpy(images)).numpy()


@pytest.mark.slow
def test_alexnet_state_dict_loads_into_alexnet_torchvision(tmp_path):
    net = seeded(AlexNet)
    model, plan = load_into("alexnet_torchvision", net, tmp_path)
    fc6 = next(row for row in plan.rows if row.layer == "fc6")
    assert fc6.sources == ("classifier.1.weight", "classifier.1.bias")
    assert "flatten order (256, 6, 6) -> (6, 6, 256)" in fc6.note
    images = np.random.default_rng(1).normal(size=(2, 3, 224, 224)).astype(np.float32)
    difference = relative_difference(torch_run(net, images), outputs(model, "fc8", images))
    print(f"alexnet_torchvision: max relative output difference {difference:.2e}")
    assert difference < TOLERANCE
    # The same weights as .safetensors give the same plan. Its writer sorts the tensors by name,
    # which keeps each nn.Sequential's order (features.2 before features.10) but puts
    # `classifier` before `features`: a map pairs the two parts.
    path = tmp_path / "alexnet.safetensors"
    save_file(net.state_dict(), path)
    built = build(load_spec(SPECS / "alexnet_torchvision.yaml"))
    mapping = {"conv*": "features.*", "fc*": "classifier.*"}
    again = match_torch(built.model, read_torch(path), graph=built.graph, mapping=mapping)
    assert [row.sources for row in again.rows] == [row.sources for row in plan.rows]
    for first, second in zip(plan.rows, again.rows, strict=True):
        assert all(np.array_equal(a, b) for a, b in zip(first.arrays, second.arrays, strict=True))


@pytest.mark.slow
def test_vgg16_state_dict_loads_into_vgg16(tmp_path):
    """At 224x224, the one size torchvision's classifier (512x7x7 inputs) fits the spec's
    flatten; the spec ends in softmax where torchvision gives logits, so fc2 and the
    probabilities are compared."""
    net = seeded(VGG16)
    model, _ = load_into("vgg16", net, tmp_path)
    images = np.random.default_rng(2).normal(size=(1, 3, 224, 224)).astype(np.float32)
    fc2 = relative_difference(torch_run(net.penultimate, images), outputs(model, "fc2", images))
    probabilities = torch_run(lambda x: torch.softmax(net(x), dim=1), images)
    last = relative_difference(probabilities, outputs(model, "predictions", images))
    print(f"vgg16: max relative difference fc2 {fc2:.2e}, probabilities {last:.2e}")
    assert fc2 < TOLERANCE and last < TOLERANCE


@pytest.mark.slow
def test_resnet50_state_dict_loads_into_resnet50_torchvision_layout(tmp_path):
    net = seeded(ResNet50)
    overrides = ["params.torchvision_layout=true", "params.bn_epsilon=1e-5"]
    model, plan = load_into("resnet50", net, tmp_path, overrides)
    projection = next(row for row in plan.rows if row.layer == "conv3_x-block1-unit-projection")
    assert projection.sources == ("layer2.0.downsample.0.weight",)
    images = np.random.default_rng(3).normal(size=(2, 3, 224, 224)).astype(np.float32)
    pooled = relative_difference(torch_run(net.penultimate, images), outputs(model, "avg_pool", images))
    probabilities = torch_run(lambda x: torch.softmax(net(x), dim=1), images)
    last = relative_difference(probabilities, outputs(model, "predictions", images))
    print(f"resnet50: max relative difference avg_pool {pooled:.2e}, probabilities {last:.2e}")
    assert pooled < TOLERANCE and last < TOLERANCE
