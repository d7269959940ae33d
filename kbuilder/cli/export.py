"""`kbuilder export`: SavedModel + .keras + manifest, atomically, verified on reload."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from kbuilder.cli.common import SetOpt, quiet_tensorflow, spec_path
from kbuilder.cli.output import Output

from kbuilder.cli.common import MaxParamsOpt, apply_max_params  # noqa: I001  (own line: clean merges)


def register(app: typer.Typer) -> None:
    @app.command()
    def export(
        spec: str = typer.Argument(..., help="Spec file (YAML) or bundled spec name."),
        directory: Path = typer.Argument(..., help="Output directory (replaced atomically)."),
        overrides: Optional[List[str]] = SetOpt,
        no_verify: bool = typer.Option(False, "--no-verify", help="Skip reloading and comparing outputs."),
        json_out: bool = typer.Option(False, "--json", help="Print the result as JSON."),
        max_params: Optional[str] = MaxParamsOpt,
    ) -> None:
        """Export an (untrained) model built from SPEC; `kbuilder train` exports trained ones."""
        apply_max_params(max_params)
        quiet_tensorflow()
        from kbuilder.api import build, export as export_built

        built = build(spec_path(spec), overrides or ())
        path = export_built(built, directory, verify=not no_verify)
        files = sorted(str(p.relative_to(path)) for p in path.iterdir())
        Output(json_out).result({"ok": True, "export": str(path), "files": files}, f"exported {built.graph.name} to {path}: {', '.join(files)}\n")
