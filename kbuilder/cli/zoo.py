"""`kbuilder zoo`: the bundled specs with a line each."""

from __future__ import annotations

import typer

from kbuilder.cli.output import Output


def register(app: typer.Typer) -> None:
    @app.command()
    def zoo(json_out: bool = typer.Option(False, "--json", help="Print the list as JSON.")) -> None:
        """List the bundled model specs (build one with `kbuilder build NAME`)."""
        from kbuilder.zoo import zoo_entries

        entries = zoo_entries()
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
        Output(json_out).result(data, "".join(lines))
