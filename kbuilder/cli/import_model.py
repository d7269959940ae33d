"""`kbuilder import`: turn a Keras model (.keras file or keras.applications name) into a spec."""

from __future__ import annotations

from pathlib import Path

import typer

import kbuilder.api as kb
from kbuilder.cli.common import TEXT_FORMATS, JsonOpt, format_option, pick_format
from kbuilder.cli.output import Output
from kbuilder.errors import UsageError


def _shape(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        shape = tuple(int(part) for part in text.replace("x", ",").split(","))
    except ValueError:
        raise UsageError(f"--input-shape takes integers like 96,96,3, got {text!r}") from None
    if not shape or any(d <= 0 for d in shape):
        raise UsageError(f"--input-shape takes positive sizes like 96,96,3, got {text!r}")
    return shape


def register(app: typer.Typer) -> None:
    @app.command(name="import")
    def import_command(
        source: str = typer.Argument(
            ..., help="A .keras file (read without running anything) or a keras.applications name (ResNet50)."
        ),
        output: Path | None = typer.Option(
            None, "--output", "-o", help="Spec file to write; without it the spec goes to stdout."
        ),
        input_shape: str | None = typer.Option(
            None, "--input-shape", help="For a keras.applications model: its input shape, e.g. 96,96,3."
        ),
        no_check: bool = typer.Option(
            False, "--no-check", help="Skip comparing outputs with the source (weights copied by name)."
        ),
        fmt: str | None = format_option(TEXT_FORMATS),
        json_out: bool = JsonOpt,
    ) -> None:
        """Write a Keras model as a spec with the same layers, names and graph; checked by
        building it (and, for keras.applications, by comparing outputs with the same weights)."""
        json_mode = pick_format(fmt, json_out, TEXT_FORMATS) == "json"
        result = kb.import_model(source, output, input_shape=_shape(input_shape), check=not no_check)
        data = {"ok": True, **result.summary()}
        if output is None and not json_mode:
            Output(json_mode).result(data, result.text)
            return
        if output is None:
            data["spec"] = result.text
        summary = result.summary()
        exact = result.exactness
        check = (
            f"exact: outputs equal after copying {exact.layers_copied} layers' weights by name "
            f"(max abs diff {exact.max_abs_diff:.3g})"
            if exact
            else "built (outputs not compared: no source weights read)"
        )
        folds = (
            f" ({summary['folded_runs']} of {summary['repeated_runs']} repeated runs folded; "
            f"{summary['flat_spec_lines']} lines flat)"
            if summary["repeated_runs"]
            else ""
        )
        text = (
            f"wrote {output}: {summary['layers']} Keras layers in {summary['spec_lines']} spec lines{folds}\n"
            f"{summary['params']:,} params, output {summary['output_shape']}; {check}\n"
        )
        Output(json_mode).result(data, text)
