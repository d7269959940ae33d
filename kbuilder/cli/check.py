"""`kbuilder check`: verify each spec's `expect` (exit 1 on a difference).

The figures come from each spec's rules, as `kbuilder build` computes them (no Keras unless
`--keras` builds the models to check against, or a layer is beyond its kind's rules). Every
spec is checked even when another fails, and a run prints exactly one result: one JSON
document with `--format json` (each spec's figures, differences or error), or the tables on
stdout and each difference or error once on stderr.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import typer

import kbuilder.api as kb
from kbuilder.cli.build import PARTIAL_HINT, DepthOpt, KerasOpt, cross_check, measure, render, render_partial
from kbuilder.cli.common import (
    TABLE_FORMATS,
    JsonOpt,
    MaxParamsOpt,
    SetOpt,
    SpecsArg,
    WeightsOpt,
    apply_max_params,
    format_option,
    pick_format,
    weights_override,
)
from kbuilder.cli.output import Output, error_payload
from kbuilder.errors import EXIT_CHECK_FAILED, EXIT_OK, CheckFailed


@dataclass
class SpecCheck:
    """The outcome of checking one spec."""

    spec: str
    data: dict
    text: str
    differences: list[str] = field(default_factory=list)
    error: BaseException | None = None
    warnings: list = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        if self.error is not None:
            return self.data["exit_code"]
        return EXIT_CHECK_FAILED if self.differences else EXIT_OK


def check_spec(
    spec: str, overrides: list[str], fmt: str, keras: bool = False, depth: int | None = None
) -> SpecCheck:
    """Measure one spec and compare it with its `expect`; an error is recorded, not raised."""
    try:
        model, notes = measure(spec, overrides, keras=keras)  # a bad spec is refused before Keras loads
    except Exception as exc:  # noqa: BLE001  (reported in this spec's result; the others still run)
        data, text = render_partial(exc, fmt, depth)
        return SpecCheck(spec, {"spec": spec, **data}, text, error=exc)
    rep, data, text = render(model, fmt, depth)
    diffs = kb.differences(model, rep)
    if model.loaded.spec.expect is None:
        note = "no `expect` section: nothing to check"
    else:
        note = (
            "expect: ok"
            if not diffs
            else f"expect: FAILED ({len(diffs)} difference{'s' * (len(diffs) != 1)})"
        )
    data.update({"spec": spec, "ok": not diffs, "differences": diffs})
    warnings = [*model.graph.warnings, *notes]
    failure, more = cross_check(model, rep) if keras else (None, [])
    if failure is not None:
        data.update(error_payload(failure))
        return SpecCheck(spec, {"spec": spec, **data}, text + note + "\n", diffs, failure, [*warnings, *more])
    return SpecCheck(spec, data, text + note + "\n", diffs, warnings=[*warnings, *more])


def _json_document(results: list[SpecCheck], code: int) -> dict:
    for result in results:
        if result.warnings:
            result.data["warnings"] = [str(w) for w in result.warnings]
    if len(results) == 1:
        return {**results[0].data, "exit_code": code}
    return {"ok": code == EXIT_OK, "exit_code": code, "specs": [r.data for r in results]}


def register(app: typer.Typer) -> None:
    @app.command()
    def check(
        specs: list[str] = SpecsArg,
        overrides: list[str] | None = SetOpt,
        fmt: str | None = format_option(TABLE_FORMATS),
        json_out: bool = JsonOpt,
        max_params: str | None = MaxParamsOpt,
        keras: bool = KerasOpt,
        depth: int | None = DepthOpt,
        weights: str | None = WeightsOpt,
    ) -> None:
        """Print each spec's figures (from the spec alone) and compare them with `expect`; with
        trained weights (--weights or the spec's), check they load into the model."""
        apply_max_params(max_params)
        fmt = pick_format(fmt, json_out)
        overrides = [*(overrides or ()), *weights_override(weights)]
        results = [check_spec(spec, overrides, fmt, keras, depth) for spec in specs]
        code = max(r.exit_code for r in results)
        output = Output(fmt == "json")
        if fmt == "json":
            failed = next((r.error for r in results if r.error is not None), None)
            if failed is not None:
                output.error_document(failed, _json_document(results, code))
            else:
                output.result(_json_document(results, code), "")
            raise typer.Exit(code)
        output.result({}, "\n".join(r.text for r in results))
        for result in results:
            output.warn([str(w) for w in result.warnings])
            if result.error is not None:
                partial = getattr(result.error, "partial", None) is not None and result.text
                output.error(result.error, hint=PARTIAL_HINT if partial else None)
        failures = [f"{r.spec}: {d}" for r in results for d in r.differences]
        if failures:
            output.error(CheckFailed(failures))
        raise typer.Exit(code)
