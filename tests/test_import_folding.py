"""Folded imports: `prefix: false` on a block use or `repeat` keeps names as written, and
`kbuilder import` writes a repeated run once where the expanded spec is exactly the flat one."""

from __future__ import annotations

import numpy as np
import pytest

import kbuilder.api as kb
from kbuilder.errors import SpecError
from kbuilder.graph import expand
from kbuilder.importer.fold_check import expanded, folded_spec
from kbuilder.importer.folding import find_runs
from kbuilder.importer.keras_graph import KerasGraph
from kbuilder.importer.spec_writer import SpecLayer, spec_text
from kbuilder.spec import loads_spec
from tests.test_static_figures import assert_static_matches_built

slow = pytest.mark.slow

UNPREFIXED = """
name: unprefixed
inputs:
  image: {shape: [8, 8, 4]}
blocks:
  unit:
    params: {stage: null, unit: null, skip: null}
    layers:
      - conv2d: {name: "${stage}_block${unit}_conv", filters: 4, kernel_size: 3, padding: same}
      - add: {name: "${stage}_block${unit}_add", inputs: ["${stage}_block${unit}_conv", "${skip}"]}
layers:
  - conv2d: {name: stem, filters: 4, kernel_size: 1}
  - block: {use: unit, name: unit1, prefix: false, args: {stage: conv2, unit: 1, skip: stem}}
  - block: {use: unit, name: unit2, prefix: false, args: {stage: conv2, unit: UNIT2, skip: unit1}}
  - repeat: {times: 2, prefix: false, layers: [{dense: {name: "head${index}", units: 4}}]}
"""


def _expand(text: str):
    return expand(loads_spec(text, file="unprefixed.yaml"))


def test_prefix_false_keeps_the_names_as_written():
    graph = _expand(UNPREFIXED.replace("UNIT2", "2"))
    names = {node.name: node.inputs for node in graph.nodes}
    assert list(names) == [
        "image",
        "stem",
        "conv2_block1_conv",
        "conv2_block1_add",
        "conv2_block2_conv",
        "conv2_block2_add",
        "head0",
        "head1",
    ]
    # The use's own name still refers to its output; plain names inside resolve as written.
    assert names["conv2_block2_add"] == ["conv2_block2_conv", "conv2_block1_add"]
    assert names["head0"] == ["conv2_block2_add"]


def test_prefix_true_is_the_default_naming():
    graph = _expand(UNPREFIXED.replace("UNIT2", "2").replace("prefix: false, ", ""))
    assert "unit1-conv2_block1_conv" in [node.name for node in graph.nodes]
    assert "repeat_3-1-head1" in [node.name for node in graph.nodes]


def test_prefix_must_be_a_boolean():
    with pytest.raises(SpecError) as error:
        _expand(UNPREFIXED.replace("UNIT2", "2").replace("unit1, prefix: false", "unit1, prefix: maybe"))
    assert "prefix" in str(error.value) and ":13:" in str(error.value)


def test_a_name_repeated_by_an_unprefixed_use_is_a_located_duplicate():
    with pytest.raises(SpecError) as error:
        _expand(UNPREFIXED.replace("UNIT2", "1"))
    message = str(error.value)
    assert "unprefixed.yaml:9:" in message and "duplicate layer name 'conv2_block1_conv'" in message
    assert "prefix: false" in message  # the hint: the names must differ by the arguments
    with pytest.raises(SpecError, match="duplicate layer name 'head'"):
        _expand(UNPREFIXED.replace("UNIT2", "2").replace('"head${index}"', "head"))


def _units(count: int, filters=lambda unit: 8, numbers=None) -> list[SpecLayer]:
    """A stem and `count` residual units named like Keras's ResNet (`s2_block1_conv`)."""
    layers = [SpecLayer("conv2d", "stem", ["image"], {"filters": 8, "kernel_size": 1})]
    for unit in numbers or range(1, count + 1):
        before = layers[-1].name
        prefix = f"s2_block{unit}"
        layers += [
            SpecLayer("conv2d", f"{prefix}_conv", [before], {"filters": filters(unit), "kernel_size": 3}),
            SpecLayer("batch_norm", f"{prefix}_bn", [f"{prefix}_conv"], {}),
            SpecLayer("add", f"{prefix}_add", [before, f"{prefix}_bn"], {}),
            SpecLayer("activation", f"{prefix}_out", [f"{prefix}_add"], {"activation": "relu"}),
        ]
    return layers


def _fold(layers: list[SpecLayer]):
    graph = KerasGraph("units", {"image": [8, 8, 8]}, [], [layers[-1].name])
    text, folds = folded_spec(graph, layers, find_runs(layers), "test")
    flat = spec_text(graph, layers, "test")
    return text, folds, flat


def test_identical_units_fold_to_a_repeat_that_expands_to_the_flat_graph():
    text, folds, flat = _fold(_units(4))
    assert len(folds) == 1 and folds[0].run.times == 4
    assert "prefix: false" in text and "s2_block${index + 1}_conv" in text
    assert len(text.splitlines()) < len(flat.splitlines())
    assert expanded(text) == expanded(flat)


def test_units_numbered_irregularly_fold_to_block_uses():
    # Units 1, 3, 7: no `${index + k}` gives those names, so a block with the number as an
    # argument (and the unit's input, which each add takes again, as another).
    text, folds, flat = _fold(_units(3, numbers=[1, 3, 7]))
    assert len(folds) == 1 and [name for name, _ in folds[0].uses] == ["s2_block1", "s2_block3", "s2_block7"]
    assert (
        "- block: {use: s2_block, name: s2_block7, prefix: false, args: {unit: '7', in0: s2_block3_out}}"
        in text
    )
    assert expanded(text) == expanded(flat)


def test_a_layer_named_apart_from_the_units_is_a_block_argument():
    # Keras names an operation's layer `add`, `add_1`, ... (ConvNeXt): not the unit's number.
    names = {"s2_block1_add": "add", "s2_block2_add": "add_1", "s2_block3_add": "add_2"}
    layers = [
        SpecLayer(
            layer.kind, names.get(layer.name, layer.name), [names.get(n, n) for n in layer.inputs], layer.args
        )
        for layer in _units(3)
    ]
    text, folds, flat = _fold(layers)
    assert len(folds) == 1 and folds[0].whole_names == 1
    assert "- add: {name: '${name2}'" in text and "name2: add_1" in text
    assert expanded(text) == expanded(flat)


def test_a_unit_differing_in_one_argument_stays_flat():
    layers = _units(3, filters=lambda unit: 16 if unit == 2 else 8)
    text, folds, flat = _fold(layers)
    assert folds == [] and text == flat


def test_names_without_a_common_template_stay_flat():
    layers = _units(3)
    # Three of the four layers of unit 2 named apart: more than half, not worth a block.
    names = {"s2_block2_bn": "other_norm", "s2_block2_add": "other_add", "s2_block2_out": "other_out"}
    renamed = [
        SpecLayer(
            layer.kind, names.get(layer.name, layer.name), [names.get(n, n) for n in layer.inputs], layer.args
        )
        for layer in layers
    ]
    text, folds, flat = _fold(renamed)
    assert folds == [] and text == flat


def _residual_model(units: int = 3):
    import keras

    inputs = keras.Input((8, 8, 4), name="image")
    x = keras.layers.Conv2D(8, 1, name="stem")(inputs)
    for unit in range(1, units + 1):
        prefix = f"stage2_block{unit}"
        y = keras.layers.Conv2D(8, 3, padding="same", name=f"{prefix}_1_conv")(x)
        y = keras.layers.BatchNormalization(name=f"{prefix}_1_bn")(y)
        y = keras.layers.Activation("relu", name=f"{prefix}_1_relu")(y)
        y = keras.layers.Conv2D(8, 3, padding="same", name=f"{prefix}_2_conv")(y)
        x = keras.layers.Add(name=f"{prefix}_add")([x, y])
        x = keras.layers.Activation("relu", name=f"{prefix}_out")(x)
    outputs = keras.layers.Dense(3, name="head")(keras.layers.GlobalAveragePooling2D(name="pool")(x))
    return keras.Model(inputs, outputs, name="units")


@slow
def test_a_folded_keras_model_builds_and_loads_its_weights_by_name(tmp_path):
    model = _residual_model()
    rng = np.random.default_rng(1)
    for weight in model.weights:  # not the initial values: a wrong match would show
        weight.assign(rng.normal(size=weight.shape).astype("float32") * 0.3)
    source = tmp_path / "units.keras"
    model.save(source)
    result = kb.import_model(source, tmp_path / "units.yaml")
    folds = result.imported.folds
    assert len(folds) == 1 and folds[0].run.times == 3
    assert len(result.text.splitlines()) < result.imported.flat_lines
    built = kb.build(tmp_path / "units.yaml", weights=False)
    assert [layer.name for layer in built.model.layers] == [layer.name for layer in model.layers]
    assert built.model.count_params() == model.count_params()
    # The folded spec's figures, from the spec alone, are the built table's (names, groups).
    assert_static_matches_built(kb.validate(tmp_path / "units.yaml"), kb.report(built))
    kb.load_weights(built, source)
    x = rng.normal(size=(2, 8, 8, 4)).astype("float32")
    np.testing.assert_array_equal(built.model.predict(x, verbose=0), model.predict(x, verbose=0))


@slow
def test_resnet50_imports_folded_with_identical_outputs():
    result = kb.import_model("ResNet50", input_shape=(32, 32, 3))
    assert len(result.imported.folds) == 4  # the identity units of each of the four stages
    assert result.exactness is not None and result.exactness.exact
    assert result.exactness.max_abs_diff == 0
    assert len(result.text.splitlines()) < result.imported.flat_lines - 50
