"""Every bundled spec validates (schema and models), builds and passes its `expect`."""

from __future__ import annotations

import json

import jsonschema
import pytest
import yaml

from kbuilder import api
from kbuilder.spec.schema import json_schema
from tests.conftest import SPECS

SPEC_FILES = sorted(SPECS.glob("*.yaml"))


@pytest.fixture(scope="module")
def schema():
    """A validator of the schema, checked against the metaschema once (jsonschema.validate
    would check it again for every instance: a second each)."""
    data = json_schema()
    jsonschema.Draft202012Validator.check_schema(data)
    return jsonschema.Draft202012Validator(data)


def test_there_are_specs():
    assert {"mnist_mlp", "xor_mlp"} <= {p.stem for p in SPEC_FILES}


@pytest.mark.parametrize("path", SPEC_FILES, ids=[p.stem for p in SPEC_FILES])
def test_spec_matches_json_schema(path, schema):
    schema.validate(yaml.safe_load(path.read_text()))


@pytest.mark.slow
@pytest.mark.parametrize("path", SPEC_FILES, ids=[p.stem for p in SPEC_FILES])
def test_spec_builds_and_passes_expect(path):
    built = api.build(path, weights=False)  # figures only: a fine-tuning spec names a run not trained here
    assert built.loaded.spec.expect is not None, "every bundled spec states what to expect"
    assert api.differences(built) == []
    report = api.report(built)
    assert report.params == built.model.count_params()
    json.dumps(report.as_json())  # serializable


def test_schema_rejects_what_the_models_reject(schema):
    bad = {"name": "m", "inputs": {"x": {"shape": [4]}}, "layers": [{"dense": {"units": 3, "unitz": 4}}]}
    with pytest.raises(jsonschema.ValidationError):
        schema.validate(bad)
    short = {
        "name": "m",
        "inputs": {"x": {"shape": [4]}},
        "layers": ["flatten", {"dense": 3}, {"dense": {"units": "${w}"}}],
    }
    schema.validate(short)
