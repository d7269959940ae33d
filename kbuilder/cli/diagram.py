"""`kbuilder diagram`: draw the architecture as SVG, PNG, PDF or DOT (by the file's extension)."""

from __future__ import annotations

from pathlib import Path

import typer

import kbuilder.api as kb
from kbuilder.cli.common import TEXT_FORMATS, JsonOpt, SetOpt, SpecArg, format_option, pick_format
from kbuilder.cli.output import Output
from kbuilder.zoo import spec_path


def register(app: typer.Typer) -> None:
    @app.command()
    def diagram(
        spec: str = SpecArg,
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
            False,
            "--no-shapes",
            help="Draw no output shapes (they come from the spec's rules, without Keras, either way).",
        ),
        detail: str = typer.Option(
            "normal",
            "--detail",
            help="What boxes show: minimal (name, kind, shape), normal (and main arguments, parameters) or full (every argument set).",
        ),
        rankdir: str = typer.Option(
            "TB", "--rankdir", help="Layout direction: TB (top to bottom) or LR (left to right); BT, RL too."
        ),
        overrides: list[str] | None = SetOpt,
        fmt: str | None = format_option(TEXT_FORMATS),
        json_out: bool = JsonOpt,
    ) -> None:
        """Draw one box per layer (name, kind, main arguments, output shape, parameters), an
        arrow per connection and blocks as labelled groups; --collapse / --depth fold blocks
        into single boxes."""
        json_mode = pick_format(fmt, json_out, TEXT_FORMATS) == "json"
        result = kb.diagram(
            spec_path(spec),
            output,
            collapse=collapse,
            depth=depth,
            shapes=not no_shapes,
            fold=fold or (),
            overrides=overrides or (),
            detail=detail,
            rankdir=rankdir.upper(),
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
            from kbuilder.diagram.dot import to_dot  # the diagram package loads with kb.diagram

            dot_text = to_dot(result)
            data["dot"] = dot_text
            Output(json_mode).result(data, dot_text, result.notes)
            return
        folded = f" ({counts['collapsed_boxes']} collapsed)" if counts["collapsed_boxes"] else ""
        text = (
            f"wrote {output}: {counts['boxes']} boxes{folded} for {counts['layers']} layers, "
            f"{counts['edges']} edges, {counts['groups']} groups\n"
        )
        Output(json_mode).result(data, text, result.notes)
