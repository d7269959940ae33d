"""`kbuilder build`: build a spec and print its layer table (optionally export it)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from kbuilder.cli.common import FormatOpt, SetOpt, pick_format, quiet_tensorflow, spec_path
from kbuilder.cli.output import Output

from kbuilder.cli.common import MaxParamsOpt, apply_max_params  # noqa: I001  (own line: clean merges)


def render(built, fmt: str) -> tuple[dict, str]:
    from kbuilder.api import report
    from kbuilder.report import RENDERERS

    rep = report(built)
    return rep.as_json(), RENDERERS[fmt](rep)


def register(app: typer.Typer) -> None:
    @app.command()
    def build(
        spec: str = typer.Argument(..., help="Spec file (YAML) or bundled spec name."),
        overrides: Optional[List[str]] = SetOpt,
        fmt: Optional[str] = FormatOpt,
        max_params: Optional[str] = MaxParamsOpt,
        export: Optional[Path] = typer.Option(None, "--export", help="Also export SavedModel + .keras to DIR."),
    ) -> None:
        """Build the model and print one row per layer with totals."""
        apply_max_params(max_params)
        fmt = pick_format(fmt)
        quiet_tensorflow()
        from kbuilder.api import build as build_spec
        from kbuilder.api import export as export_built

        built = build_spec(spec_path(spec), overrides or ())
        data, text = render(built, fmt)
        if export is not None:
            path = export_built(built, export)
            data["export"] = str(path)
            text += f"exported to {path}\n"
        Output(fmt == "json").result(data, text)
