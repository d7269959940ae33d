"""`kbuilder zoo`: the bundled specs with a line each."""

from __future__ import annotations

import typer

import kbuilder.api as kb
from kbuilder.cli.common import TEXT_FORMATS, JsonOpt, format_option, pick_format
from kbuilder.cli.output import Output


def register(app: typer.Typer) -> None:
    @app.command()
    def zoo(fmt: str | None = format_option(TEXT_FORMATS), json_out: bool = JsonOpt) -> None:
        """List the bundled model specs (build one with `kbuilder build NAME`)."""
        json_mode = pick_format(fmt, json_out, TEXT_FORMATS) == "json"
        entries = kb.zoo()
        width = max((len(e.path.stem) for e in entries), default=4)
        lines = [
            f"{e.path.stem:<{width}}  {format(e.params, ',') if e.params is not None else '?':>12} params  "
            f"{'train ' if e.trainable else '      '}{e.description.splitlines()[0] if e.description else ''}\n"
            for e in entries
        ]
        data = {
            "specs": [
                {
                    "name": e.path.stem,
                    "path": str(e.path),
                    "params": e.params,
                    "description": e.description,
                    "train": e.trainable,
                }
                for e in entries
            ]
        }
        Output(json_mode).result(data, "".join(lines))
