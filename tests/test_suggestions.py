"""Unknown layer kinds: a suggestion only when it is close, and the news that Keras has the
layer when it does (from a static list that must match keras.layers)."""

from __future__ import annotations

import inspect

import pytest

from kbuilder.errors import SpecError
from kbuilder.spec import loads_spec
from kbuilder.spec.registry import all_kinds
from kbuilder.spec.suggest import KERAS_ALIASES, KERAS_LAYER_NAMES, unknown_kind_message


def test_static_keras_names_match_keras_layers():
    import keras

    layers = keras.layers
    actual = sorted(
        name
        for name in dir(layers)
        if not name.startswith("_")
        and inspect.isclass(getattr(layers, name))
        and issubclass(getattr(layers, name), layers.Layer)
    )
    assert list(KERAS_LAYER_NAMES) == actual, "update KERAS_LAYER_NAMES in kbuilder/spec/suggest.py"
    for alias, name in KERAS_ALIASES.items():
        assert getattr(layers, alias) is getattr(layers, name)
    assert all(
        spec.keras_class in KERAS_LAYER_NAMES
        for spec in all_kinds().values()
        if spec.keras_class and not spec.keras_class.startswith("kbuilder:")
    )


@pytest.mark.parametrize(
    "kind,keras_name",
    [
        ("gaussian_noise", "GaussianNoise"),
        ("conv_lstm2d", "ConvLSTM2D"),
        ("random_crop", "RandomCrop"),
        ("lstm", "LSTM"),
        ("GaussianDropout", "GaussianDropout"),
    ],
)
def test_kind_keras_has_says_so_without_a_misleading_guess(kind, keras_name):
    message = unknown_kind_message(kind, all_kinds())
    assert message == f"unknown layer kind '{kind}': Keras has {keras_name}; kbuilder has no kind for it yet"


@pytest.mark.parametrize(
    "kind,ours",
    [
        ("conv2", "conv2d"),
        ("dens", "dense"),
        ("batchnorm", "batch_norm"),
        ("maxpool2d", "max_pooling2d"),
    ],
)
def test_close_misspellings_are_suggested(kind, ours):
    assert f"did you mean '{ours}'?" in unknown_kind_message(kind, all_kinds())


@pytest.mark.parametrize(
    "kind,ours,keras_name",
    [
        ("batch_normalization", "batch_norm", "BatchNormalization"),
        ("MaxPool2D", "max_pooling2d", "MaxPooling2D"),
        ("convolution2d", "conv2d", "Conv2D"),
    ],
)
def test_keras_names_point_to_our_kind(kind, ours, keras_name):
    message = unknown_kind_message(kind, all_kinds())
    assert (
        message
        == f"unknown layer kind '{kind}' - did you mean '{ours}'? (kbuilder's kind for Keras's {keras_name})"
    )


def test_far_words_get_no_suggestion():
    # at the old cutoff 0.6 this was "did you mean 'activation'?" (ratio 0.67), as 'normalization' was (0.61)
    assert unknown_kind_message("activity", all_kinds()) == "unknown layer kind 'activity'"
    assert unknown_kind_message("frobnicate", all_kinds()) == "unknown layer kind 'frobnicate'"


def test_located_in_a_spec():
    from kbuilder.api import validate

    with pytest.raises(SpecError) as info:
        validate(
            loads_spec(
                "name: m\ninputs: {x: {shape: [4, 4, 1]}}\nlayers:\n  - gaussian_noise: 0.1\n", file="n.yaml"
            )
        )
    assert (
        str(info.value)
        == "n.yaml:4:5: layers[0]: unknown layer kind 'gaussian_noise': Keras has GaussianNoise; kbuilder has no kind for it yet"
    )
