"""`kbuilder schema`: print the JSON Schema of the spec language."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def schema(
        output: Path | None = typer.Option(None, "--output", "-o", help="Write to FILE instead of stdout."),
    ) -> None:
        """Print the spec's JSON Schema (for editors' YAML language servers)."""
        from kbuilder.spec.schema import json_schema

        text = json.dumps(json_schema(), indent=2) + "\n"
        if output is None:
            typer.echo(text, nl=False)
        else:
            output.write_text(text, encoding="utf-8")
            typer.echo(f"wrote {output}")
