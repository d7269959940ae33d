"""`kbuilder build`: build a spec and print its layer table (optionally export it)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

import kbuilder.api as kb
from kbuilder.cli.common import (
    TABLE_FORMATS,
    JsonOpt,
    MaxParamsOpt,
    SetOpt,
    SpecArg,
    apply_max_params,
    format_option,
    pick_format,
)
from kbuilder.cli.output import Output, error_payload
from kbuilder.errors import SpecError
from kbuilder.zoo import spec_path


def render(built: Any, fmt: str) -> tuple[dict, str]:
    """The report of a built model as JSON data and as text in `fmt`."""
    from kbuilder.report import RENDERERS  # Keras is loaded already: the model was built

    rep = kb.report(built)
    return rep.as_json(), RENDERERS[fmt](rep)


def render_partial(exc: BaseException, fmt: str) -> tuple[dict, str]:
    """The error object of a failed build, with the rows of the layers built before the
    failing one (`layers_built`), and the table of those rows for people."""
    data = error_payload(exc)
    partial = getattr(exc, "partial", None)
    if partial is None:
        return data, ""
    from kbuilder.report import RENDERERS  # Keras is loaded already: part of the model was built

    rep = kb.report(partial)
    rep.name = f"{rep.name} (built up to the failing layer)"
    rep.output_shape = rep.rows[-1].output_shape  # the last layer built, not a list of every one
    data["layers_built"] = rep.as_json()["layers"]
    return data, ("" if fmt == "json" else RENDERERS[fmt](rep))


def fail_with_partial(exc: BaseException, fmt: str) -> None:
    """Report a failed build: the partial table (stdout), then the error; one JSON document."""
    data, text = render_partial(exc, fmt)
    output = Output(fmt == "json")
    if fmt == "json":
        output.error_document(exc, data)
    else:
        if text:
            sys.stdout.write(text)
            sys.stdout.flush()
        output.error(
            exc, hint="the table above shows every layer built before the failing one" if text else None
        )
    raise typer.Exit(data["exit_code"])


def register(app: typer.Typer) -> None:
    @app.command()
    def build(
        spec: str = SpecArg,
        overrides: list[str] | None = SetOpt,
        fmt: str | None = format_option(TABLE_FORMATS),
        json_out: bool = JsonOpt,
        max_params: str | None = MaxParamsOpt,
        export: Path | None = typer.Option(None, "--export", help="Also export SavedModel + .keras to DIR."),
    ) -> None:
        """Build the model and print one row per layer with totals."""
        apply_max_params(max_params)
        fmt = pick_format(fmt, json_out)
        try:
            built = kb.build(spec_path(spec), overrides or ())
        except SpecError as exc:
            if getattr(exc, "partial", None) is None:
                raise
            fail_with_partial(exc, fmt)
        data, text = render(built, fmt)
        if export is not None:
            path = kb.export(built, export)
            data["export"] = str(path)
            text += f"exported to {path}\n"
        Output(fmt == "json").result(data, text, built.graph.warnings)
