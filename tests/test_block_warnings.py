"""A block parameter the block never uses is reported as a located warning (stderr, and
`warnings` in JSON output); the spec still validates and builds."""

from __future__ import annotations

import json

from kbuilder.api import validate
from kbuilder.cli.app import main
from kbuilder.graph.unused import referenced_names
from kbuilder.spec import loads_spec

SPEC = """name: unused
inputs: {x: {shape: [8]}}
blocks:
  fc:
    params: {units: null, act: relu, dropout: 0.5}
    layers:
      - dense: {units: "${units}", activation: "${act}"}
layers:
  - block: {use: fc, args: {units: 4, dropout: 0.1}}
  - block: {use: fc, args: {units: "${2 * 1}", act: tanh}}
"""


def test_unused_argument_and_parameter_are_located_warnings():
    graph = validate(loads_spec(SPEC, file="u.yaml"))
    assert [str(w) for w in graph.warnings] == [
        "u.yaml:9:39: layers[0].block.args.dropout: block 'fc' never uses its parameter 'dropout': this argument changes nothing",
        "u.yaml:5:38: blocks.fc.params.dropout: block 'fc' never uses its parameter 'dropout'; use it as `${dropout}` or remove it",
    ]  # the parameter's own warning once, however often the block is used


def test_used_parameters_do_not_warn():
    used = SPEC.replace('activation: "${act}"', 'activation: "${act}"}\n      - dropout: {rate: "${dropout}"')
    assert validate(loads_spec(used)).warnings == []
    # names reached through nested lists, other blocks' arguments and text are all uses
    assert referenced_names(
        [{"repeat": {"layers": [{"block": {"args": {"f": "${a * b}"}}}]}}, "conv${c}_${min(d, 2)}"]
    ) >= {"a", "b", "c", "d"}


def test_cli_prints_warnings_on_stderr_and_in_json(capsys, tmp_path):
    path = tmp_path / "u.yaml"
    path.write_text(SPEC)
    assert main(["validate", str(path)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("ok: ")
    assert f"kbuilder: warning: {path}:9:39: layers[0].block.args.dropout: block 'fc' never uses" in err
    assert main(["validate", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["specs"][0]["warnings"]) == 2
    assert main(["build", str(path), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["warnings"]) == 2 and data["params"] == (8 * 4 + 4) + (4 * 2 + 2)
