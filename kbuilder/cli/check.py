"""`kbuilder check`: build and verify the spec's `expect` (exit 1 on a difference)."""

from __future__ import annotations

from typing import List, Optional

import typer

from kbuilder.cli.build import render
from kbuilder.cli.common import FormatOpt, SetOpt, pick_format, quiet_tensorflow, spec_path
from kbuilder.cli.output import Output
from kbuilder.errors import CheckFailed

from kbuilder.cli.common import MaxParamsOpt, apply_max_params  # noqa: I001  (own line: clean merges)


def register(app: typer.Typer) -> None:
    @app.command()
    def check(
        specs: List[str] = typer.Argument(..., help="Spec files (or bundled names) to check."),
        overrides: Optional[List[str]] = SetOpt,
        fmt: Optional[str] = FormatOpt,
        max_params: Optional[str] = MaxParamsOpt,
    ) -> None:
        """Build each spec, print its figures and compare them with `expect`."""
        apply_max_params(max_params)
        fmt = pick_format(fmt)
        quiet_tensorflow()
        from kbuilder.api import build, differences

        reports, texts, failures = [], [], []
        for spec in specs:
            built = build(spec_path(spec), overrides or ())
            data, text = render(built, fmt)
            diffs = differences(built)
            if built.loaded.spec.expect is None:
                diffs_note = "no `expect` section: nothing to check"
            else:
                diffs_note = "expect: ok" if not diffs else "expect: FAILED"
            data.update({"spec": spec, "ok": not diffs, "differences": diffs})
            reports.append(data)
            texts.append(text + f"{diffs_note}\n" + "".join(f"  {d}\n" for d in diffs))
            failures += [f"{spec}: {d}" for d in diffs]
        payload = reports[0] if len(reports) == 1 else {"ok": not failures, "specs": reports}
        Output(fmt == "json").result(payload, "\n".join(texts))
        if failures:
            raise CheckFailed(failures)
