"""`kbuilder schema`: print the JSON Schema of the spec language."""

from __future__ import annotations

import json
from pathlib import Path

import typer

import kbuilder.api as kb
from kbuilder.cli.common import TEXT_FORMATS, JsonOpt, format_option, pick_format
from kbuilder.cli.output import Output


def register(app: typer.Typer) -> None:
    @app.command()
    def schema(
        output: Path | None = typer.Option(None, "--output", "-o", help="Write to FILE instead of stdout."),
        fmt: str | None = format_option(TEXT_FORMATS),
        json_out: bool = JsonOpt,
    ) -> None:
        """Print the spec's JSON Schema (for editors' YAML language servers)."""
        json_mode = pick_format(fmt, json_out, TEXT_FORMATS) == "json"  # the schema itself is JSON anyway
        text = json.dumps(kb.schema(), indent=2) + "\n"
        if output is None:
            typer.echo(text, nl=False)
            return
        output.write_text(text, encoding="utf-8")
        Output(json_mode).result({"ok": True, "output": str(output)}, f"wrote {output}\n")
