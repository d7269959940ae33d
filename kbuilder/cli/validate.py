"""`kbuilder validate`: schema and graph checks without importing TensorFlow or Keras."""

from __future__ import annotations

import typer

import kbuilder.api as kb
from kbuilder.cli.common import TEXT_FORMATS, JsonOpt, SetOpt, SpecsArg, format_option, pick_format
from kbuilder.cli.output import Output
from kbuilder.zoo import spec_path


def register(app: typer.Typer) -> None:
    @app.command()
    def validate(
        specs: list[str] = SpecsArg,
        overrides: list[str] | None = SetOpt,
        fmt: str | None = format_option(TEXT_FORMATS),
        json_out: bool = JsonOpt,
    ) -> None:
        """Validate specs against the schema and check their layer graphs (fast: no Keras)."""
        json_mode = pick_format(fmt, json_out, TEXT_FORMATS) == "json"
        results, warnings = [], []
        for spec in specs:
            graph = kb.validate(spec_path(spec), overrides or ())
            lines = [str(w) for w in graph.warnings]
            results.append(
                {"spec": spec, "name": graph.name, "layers": len(graph.nodes), "ok": True, "warnings": lines}
            )
            warnings += lines
        text = "".join(f"ok: {r['spec']} ({r['name']}, {r['layers']} layers)\n" for r in results)
        Output(json_mode).result({"ok": True, "specs": results}, text, () if json_mode else warnings)
