"""`kbuilder diagram`: draw the architecture as SVG, PNG, PDF or DOT (by the file's extension)."""

from __future__ import annotations

from pathlib import Path

import typer

from kbuilder.cli.common import SetOpt, quiet_tensorflow
from kbuilder.cli.output import Output
from kbuilder.errors import UsageError, did_you_mean
from kbuilder.zoo import spec_path

TEXT_FORMATS = ("text", "plain", "rich", "json")  # plain and rich as in the other commands


def register(app: typer.Typer) -> None:
    @app.command()
    def diagram(
        spec: str = typer.Argument(..., help="Spec file (YAML) or bundled spec name."),
        output: Path | None = typer.Option(
            None,
            "--output",
            "-o",
            help="File to write: .svg, .png, .pdf, .html (folds in a browser) or .dot/.gv. Without it, DOT goes to stdout.",
        ),
        collapse: bool = typer.Option(
            False, "--collapse", help="Draw each innermost block/composite as one box."
        ),
        depth: int | None = typer.Option(
            None,
            "--depth",
            min=0,
            help="Keep N levels of nested blocks open; deeper ones become one box each.",
        ),
        fold: list[str] | None = typer.Option(
            None,
            "--fold",
            help="Draw each use of this block (or composite kind, e.g. inception) as one box; repeatable.",
        ),
        no_shapes: bool = typer.Option(
            False, "--no-shapes", help="Do not build the model (no Keras): faster, no output shapes."
        ),
        overrides: list[str] | None = SetOpt,
        fmt: str | None = typer.Option(None, "--format", "-f", help="What to print: text (default) or json."),
    ) -> None:
        """Draw one box per layer (name, kind, output shape), an arrow per connection and
        blocks as labelled groups; --collapse / --depth fold blocks into single boxes."""
        if fmt is not None and fmt not in TEXT_FORMATS:
            raise UsageError(f"unknown format '{fmt}'{did_you_mean(fmt, TEXT_FORMATS)}; choose text or json")
        json_mode = fmt == "json"
        if not no_shapes:
            quiet_tensorflow()
        from kbuilder.api import load
        from kbuilder.diagram.draw import draw

        loaded = load(spec_path(spec), overrides or ())
        result, dot_text = draw(
            loaded, output, collapse=collapse, depth=depth, shapes=not no_shapes, fold=fold or ()
        )
        counts = result.counts()
        data = {
            "ok": True,
            "spec": spec,
            "name": result.name,
            "output": str(output) if output else None,
            **counts,
        }
        if output is None:
            data["dot"] = dot_text
            Output(json_mode).result(data, dot_text)
            return
        folded = f" ({counts['collapsed_boxes']} collapsed)" if counts["collapsed_boxes"] else ""
        text = (
            f"wrote {output}: {counts['boxes']} boxes{folded} for {counts['layers']} layers, "
            f"{counts['edges']} edges, {counts['groups']} groups\n"
        )
        Output(json_mode).result(data, text)
