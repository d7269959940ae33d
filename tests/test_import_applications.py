"""`kbuilder import` of keras.applications models (weights=None: built offline, random values).

A representative set, one model per construct the importer maps, each at the smallest input
Keras allows (tests must stay within CI's budget: all 40 models took 13½ minutes here):

  ResNet50           residual adds, batch norm, zero padding (the V1 ResNets, VGG)
  MobileNetV3Small   depthwise convolutions, squeeze-and-excitation, Keras operations
                     (hard sigmoid as `relu6(x + 3) * (1 / 6)`), ReLU(max_value)
  EfficientNetB0     Rescaling and Normalization preprocessing, swish, SE, stochastic dropout
  ConvNeXtTiny       nested Sequential stems, LayerScale, layer norm, `x + y` operations
  Xception           separable convolutions
  InceptionResNetV2  concatenated branches and CustomScaleLayer (`scaled_add`)
  DenseNet121        concatenation-heavy

InceptionResNetV2 and DenseNet121 check parameters and output shape only: comparing outputs is
most of what they cost (26 of 31 s and 12 of 15 s on the loaded 2-core machine, more than the
five others' whole checks together).

For each: the spec validates, its parameter count and output shape from the spec's own rules
(no Keras build of the spec) equal the Keras model's, every weighted Keras layer keeps its name;
and, for the other five, the spec built with Keras, given the source's weights copied by
name, gives the same outputs. The command's test imports MobileNet (through kb.import_model,
which checks outputs too). The other 32 models (the other ResNets, DenseNets, EfficientNets,
ConvNeXts and MobileNets, the NASNets, InceptionV3, the VGGs) are checked nowhere in CI:
tools/import_applications.py imports and compares all 40 (docs/import.md has its table); rerun it after changing the importer.
"""

from __future__ import annotations

import re

import pytest

import kbuilder.api as kb
from kbuilder.cli.app import main

pytestmark = pytest.mark.slow  # each builds a keras.applications model: seconds to a minute

# Every constructor of keras.applications in Keras 3.15; test_the_list_is_every_application
# fails when Keras adds one, so none is left out unnoticed.
APPLICATIONS = [
    "ConvNeXtBase", "ConvNeXtLarge", "ConvNeXtSmall", "ConvNeXtTiny", "ConvNeXtXLarge",
    "DenseNet121", "DenseNet169", "DenseNet201",
    "EfficientNetB0", "EfficientNetB1", "EfficientNetB2", "EfficientNetB3", "EfficientNetB4",
    "EfficientNetB5", "EfficientNetB6", "EfficientNetB7",
    "EfficientNetV2B0", "EfficientNetV2B1", "EfficientNetV2B2", "EfficientNetV2B3",
    "EfficientNetV2L", "EfficientNetV2M", "EfficientNetV2S",
    "InceptionResNetV2", "InceptionV3", "MobileNet", "MobileNetV2", "MobileNetV3Large", "MobileNetV3Small",
    "NASNetLarge", "NASNetMobile", "ResNet101", "ResNet101V2", "ResNet152", "ResNet152V2",
    "ResNet50", "ResNet50V2", "VGG16", "VGG19", "Xception",
]  # fmt: skip
# (model, input size): the smallest Keras accepts (32, or 71 and 75 for Xception and Inception).
REPRESENTATIVE = {
    "ResNet50": 32, "MobileNetV3Small": 32, "EfficientNetB0": 32, "ConvNeXtTiny": 32,
    "Xception": 71, "InceptionResNetV2": 75, "DenseNet121": 32,
}  # fmt: skip
SHAPES_ONLY = {"DenseNet121", "InceptionResNetV2"}  # outputs compared by tools/import_applications.py


def test_the_list_is_every_application():
    from kbuilder.importer.applications import application_names

    assert application_names() == sorted(APPLICATIONS)


@pytest.mark.parametrize("name", sorted(REPRESENTATIVE))
def test_the_spec_has_the_same_parameters_output_and_outputs(name):
    from kbuilder.importer.convert import import_application
    from kbuilder.importer.exactness import compare

    size = REPRESENTATIVE[name]
    imported = import_application(name, (size, size, 3))
    static = kb.static(imported.text)
    assert static.complete
    params = sum(f.params.total for f in static.figures.values() if f.params is not None)
    assert params == imported.model.count_params()
    output = static.figures[static.graph.outputs[0]].shape
    assert list(output[1:]) == list(imported.model.outputs[0].shape[1:])
    names = {layer.name for layer in imported.layers}
    weighted = {
        layer.name for layer in imported.model.layers if layer.weights and not hasattr(layer, "layers")
    }
    assert weighted <= names  # every weighted Keras layer keeps its name in the spec
    if name in SHAPES_ONLY:
        return
    exact = compare(imported.text, imported.model)
    assert exact.exact and exact.max_relative_diff is not None and exact.max_relative_diff <= 1e-6
    assert exact.params == exact.source_params and exact.layers_copied > 0


def test_the_command_writes_the_spec_and_reports_lines_and_the_check(tmp_path, capsys):
    target = tmp_path / "mobilenet.yaml"
    code = main(["import", "MobileNet", "-o", str(target), "--input-shape", "32,32,3"])
    out = capsys.readouterr().out
    assert code == 0 and target.exists()
    found = re.search(
        r"wrote .*: (\d+) Keras layers in (\d+) spec lines \((\d+) of (\d+) repeated runs folded; (\d+) lines flat\)",
        out,
    )
    assert found, out
    layers, lines, folded, runs, flat = (int(found[i]) for i in range(1, 6))
    assert lines == len(target.read_text().splitlines()) and layers > 0
    assert 1 <= folded <= runs and lines < flat  # MobileNet's depthwise units fold
    assert re.search(
        r"exact: outputs equal after copying \d+ layers' weights by name \(max abs diff 0\)", out
    )
    assert kb.validate(target).name
