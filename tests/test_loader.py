"""Safe YAML loading: locations, duplicate keys, tags, aliases, depth, size, overrides."""

from __future__ import annotations

import pytest

from kbuilder.errors import SpecError
from kbuilder.spec import load_spec, loads_spec
from kbuilder.spec.loader import MAX_FILE_BYTES, parse_yaml

MINIMAL = "name: m\ninputs: {x: {shape: [4]}}\nlayers:\n  - dense: 3\n"


def error_of(text: str, **kw) -> str:
    with pytest.raises(SpecError) as info:
        loads_spec(text, file="s.yaml", **kw)
    return str(info.value)


def test_marks_every_path_with_line_and_column():
    _, source = parse_yaml(MINIMAL, "s.yaml")
    loc = source.locate(("layers", 0, "dense"))
    assert (loc.file, loc.line, loc.column) == ("s.yaml", 4, 5)
    assert loc.path == "layers[0].dense"


def test_duplicate_keys_are_refused_with_both_lines():
    assert (
        error_of("name: a\nname: b\n") == "s.yaml:2:1: name: duplicate key 'name' (first written on line 1)"
    )


def test_python_tags_are_refused():
    message = error_of("name: !!python/object/apply:os.system ['echo hi']\n")
    assert "s.yaml:1:7: name: YAML tag" in message and "not allowed" in message


@pytest.mark.slow
def test_alias_bomb_is_refused():
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 7)]
    assert "expands to more than" in error_of("\n".join(lines) + "\n")


def test_depth_limit():
    deep = "a: " + "[" * 80 + "]" * 80 + "\n"
    assert "nesting deeper than" in error_of(deep)


def test_size_limit(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text("# " + "x" * MAX_FILE_BYTES + "\n")
    with pytest.raises(SpecError, match="the limit is"):
        load_spec(path)


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(SpecError, match="cannot read the spec"):
        load_spec(tmp_path / "nope.yaml")
    assert error_of("name: [unclosed\n").startswith("s.yaml:2:1: not valid YAML")


def test_empty_and_non_mapping_documents():
    assert "the file is empty" in error_of("")
    assert "expected a mapping" in error_of("- a\n- b\n")


def test_merge_keys_work():
    spec = loads_spec(
        "name: m\ninputs: {x: {shape: [4]}}\nparams: {w: 3}\nlayers:\n"
        "  - dense: &base {units: 3}\n  - dense: {<<: *base, activation: relu}\n"
    )
    assert spec.spec.layers[1] == {"dense": {"units": 3, "activation": "relu"}}


def test_overrides_apply_and_are_located():
    spec = loads_spec(MINIMAL, overrides=["layers[0].dense=7", "description=hello"])
    assert spec.spec.layers[0] == {"dense": 7} and spec.spec.description == "hello"
    message = error_of(MINIMAL, overrides=["inputs.x.shape=[0]"])
    assert (
        message == "--set inputs.x.shape=[0]: inputs.x.shape[0]: expected a value greater than 0; got 0 (int)"
    )
    assert "expected KEY=VALUE" in error_of(MINIMAL, overrides=["novalue"])
    assert "no item 5" in error_of(MINIMAL, overrides=["layers[5].dense=1"])


def test_a_list_index_may_be_written_as_a_dotted_part():
    # `layers.1.dense.units` is the form a `search` section's keys take; --set accepts it too.
    spec = "name: m\ninputs:\n  x: {shape: [4]}\nlayers:\n  - dense: 8\n  - dense: 2\n"
    loaded = loads_spec(spec, overrides=["layers.1.dense=3", "layers[0].dense=5"])
    assert loaded.spec.layers == [{"dense": 5}, {"dense": 3}]
    assert "no item 7 (the list has 2)" in error_of(spec, overrides=["layers.7.dense=3"])
