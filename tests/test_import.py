"""`kbuilder import` of `.keras` files: small functional and Sequential models become specs with
the same names, graph and outputs; Lambda layers, custom objects and crafted archives are refused
(exit 2) without anything being deserialized."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

import kbuilder.api as kb
from kbuilder.cli.app import main
from kbuilder.errors import SpecError
from kbuilder.importer import archive as reader

# Tests that build Keras models (or map layers, which reads Keras's defaults) are `slow`: TensorFlow's
# start alone takes seconds. A crafted archive is refused before Keras loads.
slow = pytest.mark.slow


def _functional():
    import keras

    inputs = keras.Input((16, 16, 3), name="image")
    x = keras.layers.Conv2D(8, 3, padding="same", use_bias=False, name="stem_conv")(inputs)
    x = keras.layers.BatchNormalization(epsilon=1.001e-5, name="stem_bn")(x)
    x = keras.layers.ReLU(max_value=6.0, name="stem_relu")(x)
    branch = keras.layers.DepthwiseConv2D(3, padding="same", name="dw")(x)
    branch = keras.layers.Activation("swish", name="dw_act")(branch)
    gate = keras.layers.GlobalAveragePooling2D(keepdims=True, name="se_pool")(branch)
    gate = keras.layers.Conv2D(8, 1, activation="sigmoid", name="se_gate")(gate)
    branch = keras.layers.Multiply(name="se_mul")([branch, gate])
    x = keras.layers.Add(name="residual")([x, branch])
    y = keras.layers.Concatenate(name="joined")([x, keras.layers.MaxPooling2D(1, name="same_pool")(x)])
    y = keras.layers.ZeroPadding2D(((0, 1), (0, 1)), name="pad")(y)
    sep = keras.layers.SeparableConv2D(4, 3, strides=2, name="sep")
    sep.trainable = False
    y = sep(y)
    y = keras.layers.Flatten(name="flat")(y)
    y = keras.layers.Dropout(0.2, name="drop")(y)
    outputs = keras.layers.Dense(
        5, activation="softmax", kernel_regularizer=keras.regularizers.L2(1e-4), name="head"
    )(y)
    return keras.Model(inputs, outputs, name="small_net")


def _sequential():
    import keras

    return keras.Sequential(
        [
            keras.Input((12,), name="features"),
            keras.layers.Dense(8, activation="relu", name="hidden"),
            keras.layers.Rescaling(0.5, offset=1.0, name="rescale"),
            keras.layers.Dense(3, name="logits"),
        ],
        name="seq",
    )


def _same_outputs(result, model):
    """The spec, built, with the model's weights copied by name, gives the model's outputs."""
    from kbuilder.importer.exactness import build_spec, copy_weights

    built = build_spec(result.text)
    assert [layer.name for layer in built.layers if layer.weights] == [
        layer.name for layer in model.layers if layer.weights
    ]
    copy_weights(model, built)
    x = np.random.default_rng(0).normal(size=(3, *model.inputs[0].shape[1:])).astype("float32")
    np.testing.assert_allclose(built.predict(x, verbose=0), model.predict(x, verbose=0), rtol=0, atol=1e-6)
    assert built.count_params() == model.count_params() == result.params


@slow
@pytest.mark.parametrize("make", [_functional, _sequential])
def test_a_saved_model_imports_with_its_names_graph_and_outputs(tmp_path, make):
    model = make()
    source = tmp_path / "model.keras"
    model.save(source)
    result = kb.import_model(source, tmp_path / "spec.yaml")
    assert (tmp_path / "spec.yaml").read_text() == result.text
    assert result.exactness is None and result.output_shape == [list(model.outputs[0].shape[1:])]
    kb.validate(tmp_path / "spec.yaml")
    _same_outputs(result, model)


@slow
def test_merges_name_their_inputs_and_a_chain_does_not(tmp_path):
    source = tmp_path / "model.keras"
    _functional().save(source)
    text = kb.import_model(source).text
    assert "- multiply: {name: se_mul, inputs: [dw_act, se_gate]}" in text
    assert "- concat: {name: joined, inputs: [residual, same_pool]}" in text
    assert "- relu: {name: stem_relu, max_value: 6.0}" in text  # no `inputs:`: it takes the line above
    assert "- global_average_pooling2d: {name: se_pool, keepdims: true}" in text
    assert "kernel_regularizer: {l2: 0.0001}" in text
    assert "- separable_conv2d: {name: sep, trainable: false, filters: 4, kernel_size: 3, strides: 2}" in text


def _save_config(path, config):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", json.dumps(config) if not isinstance(config, str) else config)
        archive.writestr("metadata.json", "{}")


@slow
def test_a_lambda_is_refused_without_running_it(tmp_path, capsys):
    import keras

    inputs = keras.Input((4,), name="x")
    outputs = keras.layers.Lambda(lambda t: t * 2, name="double")(keras.layers.Dense(2, name="d")(inputs))
    source = tmp_path / "lambda.keras"
    keras.Model(inputs, outputs).save(source)
    code = main(["import", str(source), "-o", str(tmp_path / "out.yaml")])
    err = capsys.readouterr().err
    assert code == 2 and "config.layers[2]" in err and "'double' is a Lambda" in err
    assert not (tmp_path / "out.yaml").exists()


@slow
def test_a_custom_class_is_refused_naming_the_layer_and_the_kind_needed(tmp_path):
    source = tmp_path / "custom.keras"
    config = _sequential_config()
    config["config"]["layers"][2].update(
        {"module": "evil.module", "class_name": "Backdoor", "registered_name": "evil>Backdoor"}
    )
    _save_config(source, config)
    with pytest.raises(SpecError) as caught:
        kb.import_model(source)
    message = str(caught.value)
    assert "layer 'rescale' (Backdoor)" in message and "module 'evil.module' is a custom object" in message
    assert "would need the layer kind(s) backdoor" in message


def _sequential_config():
    import keras

    return json.loads(json.dumps(keras.saving.serialize_keras_object(_sequential())))


@slow
def test_a_keras_class_without_a_kind_lists_every_missing_kind(tmp_path):
    config = _sequential_config()
    config["config"]["layers"][1]["class_name"] = "GaussianNoise"
    config["config"]["layers"][3]["class_name"] = "UnitNormalization"
    source = tmp_path / "m.keras"
    _save_config(source, config)
    with pytest.raises(SpecError) as caught:
        kb.import_model(source)
    message = str(caught.value)
    assert "layer 'hidden' (GaussianNoise): no kbuilder kind builds keras.layers.GaussianNoise" in message
    assert "would need the layer kind(s) gaussian_noise, unit_normalization" in message


@slow
def test_a_bad_value_is_refused_at_the_source_layer(tmp_path, capsys):
    config = _sequential_config()
    config["config"]["layers"][1]["config"]["units"] = -5
    source = tmp_path / "m.keras"
    _save_config(source, config)
    assert main(["import", str(source)]) == 2
    err = capsys.readouterr().err
    assert (
        f"{source}: config.layers[1]: layer 'hidden' (Dense): units: input should be greater than 0; got -5"
        in err
    )


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "config.json:1:2: not valid JSON"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('{"class_name": "MySubclass", "config": {}}', "expected a Functional or Sequential model"),
        ('{"class_name": "Functional", "config": {"layers": [], "name": "m"}}', "needs a list of layers"),
    ],
)
def test_bad_config_json_is_refused_with_exit_2(tmp_path, capsys, content, expected):
    source = tmp_path / "bad.keras"
    _save_config(source, content)
    assert main(["import", str(source)]) == 2
    assert expected in capsys.readouterr().err


def test_crafted_archives_are_refused(tmp_path, capsys, monkeypatch):
    """Refused before Keras loads (the fast test subset never imports it)."""
    traversal = tmp_path / "traversal.keras"
    with zipfile.ZipFile(traversal, "w") as archive:
        archive.writestr("config.json", "{}")
        archive.writestr("../../escape.txt", "x")
    monkeypatch.setattr(reader, "MAX_CONFIG_BYTES", 1000)  # 64 MiB in use: the same check, smaller
    huge = tmp_path / "huge.keras"
    with zipfile.ZipFile(huge, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("config.json", " " * 5000)
    not_zip = tmp_path / "plain.keras"
    not_zip.write_text("name: x\n")
    for path, expected in [
        (traversal, "member name '../../escape.txt' points outside the archive"),
        (huge, "config.json declares 5,000 bytes (at most 1,000)"),
        (not_zip, "not a .keras file"),
    ]:
        assert main(["import", str(path), "-o", str(tmp_path / "out.yaml")]) == 2
        assert expected in capsys.readouterr().err
        assert not (tmp_path / "out.yaml").exists()


@slow
def test_an_unknown_source_name_suggests_the_applications(capsys):
    assert main(["import", "ResNet5O"]) == 2
    assert "did you mean 'ResNet50'" in capsys.readouterr().err


@slow
def test_the_spec_comes_in_json_with_its_figures(tmp_path, capsys):
    """Refused or not, `--json` prints one document; here a valid model."""
    source = tmp_path / "seq.keras"
    _save_config(source, _sequential_config())
    assert main(["import", str(source), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["layers"] == 3 and document["params"] == 12 * 8 + 8 + 8 * 3 + 3
    assert document["exact"] is None and document["spec"].startswith("name: seq\n")
