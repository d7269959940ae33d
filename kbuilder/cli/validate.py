"""`kbuilder validate`: schema and graph checks without importing TensorFlow or Keras."""

from __future__ import annotations

import typer

from kbuilder.cli.common import SetOpt
from kbuilder.cli.output import Output
from kbuilder.zoo import spec_path


def register(app: typer.Typer) -> None:
    @app.command()
    def validate(
        specs: list[str] = typer.Argument(..., help="Spec files to validate."),
        overrides: list[str] | None = SetOpt,
        json_out: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    ) -> None:
        """Validate specs against the schema and check their layer graphs (fast: no Keras)."""
        from kbuilder.api import validate as validate_spec

        results, warnings = [], []
        for spec in specs:
            graph = validate_spec(spec_path(spec), overrides or ())
            lines = [str(w) for w in graph.warnings]
            results.append(
                {"spec": spec, "name": graph.name, "layers": len(graph.nodes), "ok": True, "warnings": lines}
            )
            warnings += lines
        text = "".join(f"ok: {r['spec']} ({r['name']}, {r['layers']} layers)\n" for r in results)
        Output(json_out).result({"ok": True, "specs": results}, text, () if json_out else warnings)
