"""Weights into a spec, matched by name, through a map, with include/exclude; every mismatch
located at the spec's layer. Sources: Keras 3 .weights.h5, .keras, legacy HDF5 (both the
weights-only layout keras.applications ships and a legacy full-model file)."""

from __future__ import annotations

import numpy as np
import pytest

import kbuilder.api as kb
from kbuilder.errors import SpecError
from tests.weights_helpers import TINY, inputs, randomize, spec_with, write_legacy

pytestmark = pytest.mark.slow  # each builds small Keras models (about a second)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A tiny model with seeded random weights, saved in every Keras layout, and its outputs."""
    folder = tmp_path_factory.mktemp("weights")
    built = kb.build(TINY, weights=False)
    randomize(built.model)
    built.model.save_weights(folder / "tiny.weights.h5")
    built.model.save(folder / "tiny.keras")
    write_legacy(folder / "tiny_legacy.h5", built.model)
    built.model.save(folder / "tiny_full.h5")  # Keras 3 still writes a legacy full-model file
    return folder, np.asarray(built.model(inputs()))


@pytest.mark.parametrize("name", ["tiny.weights.h5", "tiny.keras", "tiny_legacy.h5", "tiny_full.h5"])
def test_every_keras_layout_loads_by_name_with_identical_outputs(source, name):
    folder, expected = source
    built = kb.build(TINY, weights=False)
    assert np.abs(np.asarray(built.model(inputs())) - expected).max() > 1e-3  # a fresh model differs
    plan = kb.load_weights(built, folder / name)
    assert plan.counts() == {"loaded": 5, "new": 0, "skipped": 0}
    assert [row.layer for row in plan.rows] == ["c1", "bn", "res-c2", "mha", "head"]
    np.testing.assert_allclose(np.asarray(built.model(inputs())), expected, rtol=1e-6, atol=1e-6)


def test_the_spec_section_loads_at_build_and_a_relative_from_starts_at_the_spec_folder(source, tmp_path):
    folder, expected = source
    spec = tmp_path / "sub" / "tiny.yaml"
    spec.parent.mkdir()
    (folder / "tiny.keras").replace(tmp_path / "moved.keras")
    try:
        spec.write_text(spec_with("weights: {from: ../moved.keras}\n"))
        built = kb.build(spec)
        assert built.weights.counts()["loaded"] == 5
        assert kb.load(spec).spec.weights.from_ == str((tmp_path / "moved.keras").resolve())
        np.testing.assert_allclose(np.asarray(built.model(inputs())), expected, rtol=1e-6, atol=1e-6)
    finally:
        (tmp_path / "moved.keras").replace(folder / "tiny.keras")


def test_exclude_keeps_a_new_head_and_shows_it_as_new(source):
    folder, _ = source
    spec = TINY.replace("{name: head, units: 3}", "{name: head, units: 5}")
    built = kb.build(spec_with(f"weights: {{from: {folder / 'tiny.weights.h5'}, exclude: [head]}}\n", spec))
    rows = {row.layer: row for row in built.weights.rows}
    assert rows["head"].status == "new" and rows["c1"].status == "loaded"
    table = kb.weights_table(built.weights)
    assert "head" in table and "new" in table and "4 layers loaded, 1 new, 0 skipped" in table


def test_include_loads_only_the_layers_named_by_a_block_or_a_glob(source):
    folder, _ = source
    built = kb.build(spec_with(f"weights: {{from: {folder / 'tiny.weights.h5'}, include: [res, 'c*']}}\n"))
    status = {row.layer: row.status for row in built.weights.rows}
    assert status == {
        "c1": "loaded",
        "bn": "skipped",
        "res-c2": "loaded",
        "mha": "skipped",
        "head": "skipped",
    }


def test_a_map_with_globs_renames_layers_and_passes_wildcards_on(source):
    folder, expected = source
    renamed = TINY.replace("name: c1", "name: stem_conv1").replace("name: c2", "name: conv2")
    renamed = renamed.replace("name: bn}", "name: stem_bn}").replace("name: res\n", "name: block\n")
    mapping = "{'stem_conv*': 'c*', stem_bn: bn, 'block-conv*': 'res-c*'}"
    built = kb.build(spec_with(f"weights: {{from: {folder / 'tiny.keras'}, map: {mapping}}}\n", renamed))
    rows = {row.layer: row for row in built.weights.rows}
    assert rows["stem_conv1"].source_layer == "c1" and rows["block-conv2"].source_layer == "res-c2"
    assert rows["head"].note == "name" and rows["stem_bn"].note.startswith("map ")
    np.testing.assert_allclose(np.asarray(built.model(inputs())), expected, rtol=1e-6, atol=1e-6)


def _problems(spec: str) -> list[str]:
    with pytest.raises(SpecError) as caught:
        kb.build(spec)
    return [str(p) for p in caught.value.problems]


def test_every_mismatch_is_located_at_the_spec_layer_with_its_fix(source, tmp_path):
    folder, _ = source
    spec = (
        TINY.replace("name: bn}", "name: bn_1}")  # renamed: no source layer of its name
        .replace("kernel_size: 3, padding: same}\n  - reshape", "kernel_size: 5, padding: same}\n  - reshape")
        .replace("{name: head, units: 3}", "{name: head, units: 3}\n  - dense: {name: extra, units: 2}")
    )
    file = tmp_path / "bad.yaml"
    file.write_text(spec_with(f"weights:\n  from: {folder / 'tiny.weights.h5'}\n  exclude: [hed]\n", spec))
    with pytest.raises(SpecError) as caught:
        kb.build(file)
    problems = {p.location.path: str(p) for p in caught.value.problems}
    lines = file.read_text().splitlines()
    # bn_1: missing, with the nearest source name and both fixes
    missing = problems["layers[1]"]
    assert "bad.yaml:6:5" in missing and "no layer 'bn_1'" in missing and "did you mean 'bn'" in missing
    assert "weights.exclude" in missing and "weights.map: {bn_1: bn}" in missing
    assert "bn_1" in lines[5]
    # res-c2: another kernel size, expected vs received
    shape = problems["layers[2].residual.layers[0]"]
    assert "expected shape (5, 5, 4, 4)" in shape and "(3, 3, 4, 4)" in shape and ":10:11:" in shape
    # extra: a new layer the source lacks
    assert "no layer 'extra'" in problems["layers[7]"]
    # bn in the source: taken by no spec layer, located at weights.from
    assert (
        "the source's layer 'bn'" in problems["weights.from"]
        and "did you mean 'bn_1'" in problems["weights.from"]
    )
    # a typo in exclude
    assert "'hed' names no weighted layer" in problems["weights.exclude[0]"]
    assert "did you mean 'head'" in problems["weights.exclude[0]"]


def test_a_map_entry_that_matches_nothing_and_a_count_mismatch_are_located(source):
    folder, _ = source
    problems = _problems(
        spec_with(f"weights: {{from: {folder / 'tiny.keras'}, map: {{hedd: head, bn: c1}}}}\n")
    )
    text = "\n".join(problems)
    assert "weights.map.hedd: matches no spec layer to load - did you mean 'head'?" in text
    assert "layer 'bn' has 4 weights" in text and "the source layer 'c1' holds 2" in text


def test_order_matching_of_a_keras3_file_is_refused_and_of_a_legacy_file_works(source):
    folder, expected = source
    from kbuilder.errors import UsageError

    with pytest.raises(UsageError, match="keys its layers by class"):
        kb.build(spec_with(f"weights: {{from: {folder / 'tiny.weights.h5'}, match: order}}\n"))
    renamed = TINY.replace("name: c1", "name: first").replace("name: head", "name: last")
    built = kb.build(spec_with(f"weights: {{from: {folder / 'tiny_legacy.h5'}, match: order}}\n", renamed))
    assert built.weights.match == "order" and built.weights.counts()["loaded"] == 5
    np.testing.assert_allclose(np.asarray(built.model(inputs())), expected, rtol=1e-6, atol=1e-6)


def test_the_section_is_validated_with_the_spec():
    from kbuilder.spec import loads_spec

    with pytest.raises(SpecError, match="unknown field 'exlude' - did you mean 'exclude'"):
        loads_spec(spec_with("weights: {from: x.h5, exlude: [head]}\n"))
    with pytest.raises(SpecError, match="match: map needs a `map`"):
        loads_spec(spec_with("weights: {from: x.h5, match: map}\n"))
    with pytest.raises(SpecError, match="weights.match"):
        loads_spec(spec_with("weights: {from: x.h5, match: nme}\n"))
    dumped = loads_spec(spec_with("weights: {from: /x.h5}\n")).spec.model_dump(mode="json")
    assert dumped["weights"]["from"] == "/x.h5"  # written out under its YAML name


def test_an_inception_network_takes_its_features_and_a_new_head(tmp_path):
    """googlenet's inception modules expand into named branch layers, each matched by name;
    its 1000-class head replaced by a 10-class one stays new, and the features agree."""
    import keras

    source = kb.build("googlenet", weights=False)
    randomize(source.model, seed=5)
    source.model.save_weights(tmp_path / "googlenet.weights.h5")
    spec = kb.load("googlenet").spec.model_dump(mode="json")
    spec["layers"][-1]["dense"]["units"] = 10
    spec.pop("expect")
    spec["weights"] = {"from": str(tmp_path / "googlenet.weights.h5"), "exclude": ["linear"]}
    built = kb.build(spec)
    counts = built.weights.counts()
    weighted = len([layer for layer in source.model.layers if layer.weights])
    assert counts == {"loaded": weighted - 1, "new": 1, "skipped": 0}
    assert any(row.layer.startswith("inception_3a-") for row in built.weights.loaded())
    x = np.random.default_rng(0).uniform(0, 1, size=(1, 224, 224, 3)).astype("float32")

    def features(model):
        return np.asarray(keras.Model(model.input, model.get_layer("avg_pool").output)(x))

    np.testing.assert_allclose(features(built.model), features(source.model), rtol=1e-5, atol=1e-6)
    options = built.loaded.spec.weights
    built.loaded.spec.weights = options.model_copy(update={"include": ["inception_3*"]})
    only = kb.load_weights(built)
    loaded = {row.layer.split("-")[0] for row in only.loaded()}
    assert loaded == {"inception_3a", "inception_3b"} and only.counts()["skipped"] > 0
