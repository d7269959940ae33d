"""The options every command shares: one `--format` with `--json` as its alias, `--debug`
before or after the command name, `--version`, one backend list, one check per option."""

from __future__ import annotations

import json
from importlib.metadata import version

import pytest
import typer

from kbuilder.backend import BACKENDS
from kbuilder.cli.app import COMMAND_MODULES, app, main
from tests.conftest import SPECS

MLP = str(SPECS / "mnist_mlp.yaml")


def run(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_every_command_takes_format_json_and_debug():
    group = typer.main.get_command(app)
    assert len(group.commands) == len(COMMAND_MODULES)  # a command's name may differ from its module's
    for name, command in group.commands.items():
        options = {opt for param in command.params for opt in param.opts}
        assert {"--format", "--json", "--debug"} <= options, name


@pytest.mark.parametrize(
    "argv",
    [["validate", MLP], ["zoo"], ["build", "xor_mlp"], ["check", "xor_mlp"], ["diagram", MLP, "--no-shapes"]],
    ids=lambda argv: argv[0],
)
def test_json_is_an_alias_of_format_json(capsys, argv):
    code, alias, _ = run(capsys, *argv, "--json")
    assert code == 0
    code, long, _ = run(capsys, *argv, "--format", "json")
    assert code == 0 and json.loads(alias) == json.loads(long)


def test_json_and_another_format_disagree(capsys):
    code, out, _ = run(capsys, "build", MLP, "--json", "--format", "plain")
    assert code == 2 and "--json means --format json" in json.loads(out)["problems"][0]


def test_a_misspelt_format_gets_a_suggestion(capsys):
    code, _, err = run(capsys, "validate", MLP, "--format", "jsn")
    assert code == 2 and "unknown format 'jsn' - did you mean 'json'?" in err


def test_debug_after_the_command_name(capsys, tmp_path, monkeypatch):
    monkeypatch.delenv("KBUILDER_DEBUG", raising=False)  # restored after the test
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: m\n")
    code, _, err = run(capsys, "validate", str(bad))
    assert code == 2 and "Traceback" not in err
    code, _, err = run(capsys, "validate", "--debug", str(bad))
    assert code == 2 and "Traceback" in err and "missing required field 'inputs'" in err


def test_debug_before_the_command_name(capsys, tmp_path, monkeypatch):
    monkeypatch.delenv("KBUILDER_DEBUG", raising=False)  # restored after the test
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: m\n")
    code, _, err = run(capsys, "--debug", "validate", str(bad))
    assert code == 2 and "Traceback" in err and "missing required field 'inputs'" in err


def test_version(capsys):
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out == f"kbuilder {version('kbuilder')}\n"


def test_export_names_its_file_formats_with_to(capsys, tmp_path):
    code, _, err = run(capsys, "export", MLP, str(tmp_path / "e"), "--format", "onnx")
    assert code == 2 and "name the files to write with --to onnx" in err
    assert not (tmp_path / "e").exists()


@pytest.mark.parametrize("command", ["train", "tune", "ensemble"])
def test_one_backend_check(capsys, command):
    code, _, err = run(capsys, command, MLP, "--backend", "jaxx")
    assert code == 2
    assert f"unknown backend 'jaxx' - did you mean 'jax'?; choose one of {', '.join(BACKENDS)}" in err


def test_backend_help_lists_the_backends():
    group = typer.main.get_command(app)
    for name in ("train", "tune", "ensemble"):
        (backend,) = [p for p in group.commands[name].params if "--backend" in p.opts]
        assert ", ".join(BACKENDS) in (backend.help or ""), name
