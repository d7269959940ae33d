"""`kbuilder import` of every keras.applications model (weights=None: built offline, random values).

Every model: the spec validates and its parameter count and output shape, from the spec's own
rules (no Keras build of the spec), equal the Keras model's. A representative subset at a small
input: the spec built with Keras, the source's weights copied by layer name, gives equal outputs.
docs/import.md has the table of all of them (tools/import_applications.py).
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
# One of each family (and each construct: concatenation, depthwise and separable convolutions,
# squeeze-and-excitation, Keras operations, nested Sequential stems, scaled residuals).
EXACT = [
    "ResNet50", "ResNet50V2", "DenseNet121", "MobileNetV2", "MobileNetV3Small", "EfficientNetB0",
    "EfficientNetV2B0", "ConvNeXtTiny", "InceptionV3", "InceptionResNetV2", "Xception", "NASNetMobile",
    "VGG16", "MobileNet",
]  # fmt: skip
SIZE = (96, 96, 3)  # small enough to be quick, large enough for every model's downsampling


def test_the_list_is_every_application():
    from kbuilder.importer.applications import application_names

    assert application_names() == sorted(APPLICATIONS)


@pytest.mark.parametrize("name", APPLICATIONS)
def test_every_application_imports_with_the_same_parameters_and_output(name):
    from kbuilder.importer.convert import import_application

    imported = import_application(name, SIZE)
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


@pytest.mark.parametrize("name", EXACT)
def test_outputs_are_identical_with_the_weights_copied_by_name(name, tmp_path):
    result = kb.import_model(name, tmp_path / "spec.yaml", input_shape=SIZE)
    exact = result.exactness
    assert exact is not None and exact.exact
    assert exact.max_relative_diff is not None and exact.max_relative_diff <= 1e-6
    assert exact.params == exact.source_params and exact.layers_copied > 0
    assert kb.validate(tmp_path / "spec.yaml").name


def test_the_command_writes_the_spec_and_reports_lines_and_the_check(tmp_path, capsys):
    target = tmp_path / "mobilenet.yaml"
    code = main(["import", "MobileNet", "-o", str(target), "--input-shape", "64,64,3"])
    out = capsys.readouterr().out
    assert code == 0 and target.exists()
    found = re.search(r"wrote .*: (\d+) Keras layers in (\d+) spec lines", out)
    assert found and int(found[2]) == len(target.read_text().splitlines()) > int(found[1]) > 0
    assert re.search(
        r"exact: outputs equal after copying \d+ layers' weights by name \(max abs diff 0\)", out
    )
