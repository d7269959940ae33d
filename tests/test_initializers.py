"""Every initializer the schema names builds, with each of its arguments reaching Keras.

Parametrized over the schema's own list of names, so a name added there is tested here
(and fails until fields.INITIALIZER_ARGUMENTS says which arguments it takes).
"""

from __future__ import annotations

from typing import get_args

import numpy as np
import pytest

from kbuilder import api
from kbuilder.errors import SpecError
from kbuilder.spec import loads_spec
from kbuilder.spec.fields import INITIALIZER_ARGUMENTS, InitializerName
from kbuilder.spec.schema import json_schema

NAMES = get_args(InitializerName)

# A value for each argument an initializer may take, different from Keras's default so a
# dropped argument shows in the built initializer's config.
SAMPLES = {
    "seed": 7,
    "value": 0.5,
    "gain": 2.0,
    "mean": 0.25,
    "stddev": 0.02,
    "minval": -0.1,
    "maxval": 0.3,
    "scale": 2.0,
    "mode": "fan_out",
    "distribution": "uniform",
}


def _spec(initializer: str) -> str:
    return (
        "name: m\ninputs:\n  x: {shape: [4]}\nlayers:\n"
        f"  - dense: {{name: d, units: 3, kernel_initializer: {initializer}, bias_initializer: ones}}\n"
    )


def _dense(text: str):
    return api.build(loads_spec(text, file="t.yaml")).model.get_layer("d")


def test_the_schema_names_exactly_the_initializers_with_known_arguments():
    schema_names = json_schema()["$defs"]["InitializerSpec"]["properties"]["name"]
    enum = next(option["enum"] for option in schema_names["anyOf"] if "enum" in option)
    assert sorted(enum) == sorted(NAMES) == sorted(INITIALIZER_ARGUMENTS)
    assert all(argument in SAMPLES for arguments in INITIALIZER_ARGUMENTS.values() for argument in arguments)


@pytest.mark.parametrize("name", NAMES)
def test_each_initializer_builds_with_all_its_arguments(name):
    arguments = {key: SAMPLES[key] for key in INITIALIZER_ARGUMENTS[name]}
    written = ", ".join(f"{key}: {value}" for key, value in arguments.items())
    layer = _dense(_spec(f"{{name: {name}{', ' if written else ''}{written}}}"))
    built = layer.kernel_initializer
    config = built.get_config()
    for key, value in arguments.items():
        # Keras's Identity leaves its gain out of get_config: read the attribute then.
        assert config.get(key, getattr(built, key, None)) == value, (name, key, config)
    assert np.all(np.asarray(layer.bias) == 1.0)  # the bare-name form of another initializer


@pytest.mark.parametrize("name", NAMES)
def test_each_initializer_builds_by_its_bare_name(name):
    layer = _dense(_spec(name))
    assert np.asarray(layer.kernel).shape == (4, 3)


def test_constant_zeros_ones_and_identity_give_their_values():
    kernel = np.asarray(_dense(_spec("{name: constant, value: 0.5}")).kernel)
    assert np.all(kernel == 0.5)
    assert np.all(np.asarray(_dense(_spec("constant")).kernel) == 0.0)  # Keras's default value
    assert np.all(np.asarray(_dense(_spec("ones")).kernel) == 1.0)
    identity = np.asarray(_dense(_spec("{name: identity, gain: 2.0}")).kernel)
    assert np.array_equal(identity, 2.0 * np.eye(4, 3))


def test_seeded_initializers_repeat_their_weights():
    first = np.asarray(_dense(_spec("{name: he_normal, seed: 3}")).kernel)
    second = np.asarray(_dense(_spec("{name: he_normal, seed: 3}")).kernel)
    assert np.array_equal(first, second)


@pytest.mark.parametrize(
    ("initializer", "message"),
    [
        ("{name: he_normal, stddev: 0.1}", "he_normal does not take stddev; it takes seed"),
        ("{name: zeros, value: 1}", "zeros does not take value; it takes no arguments"),
        ("{name: constant, stddev: 0.1}", "constant does not take stddev; it takes value"),
        ("{name: random_uniform, minval: 1, maxval: 0}", "minval (1.0) must be below maxval (0.0)"),
    ],
)
def test_an_argument_the_initializer_lacks_is_refused_when_validating(initializer, message):
    with pytest.raises(SpecError) as err:
        api.validate(loads_spec(_spec(initializer), file="t.yaml"))
    assert "t.yaml:5:" in str(err.value) and message in str(err.value)
