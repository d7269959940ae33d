"""`kbuilder build`: print a spec's layer table (optionally export the model).

The table comes from the spec's rules (`kb.static`, no Keras) unless a model object is needed:
`--export` builds it with Keras, `--keras` builds it and checks every cell of the table against
it, and a layer whose figures are beyond its kind's rules makes Keras build the model, saying so.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import typer

import kbuilder.api as kb
from kbuilder.cli.common import (
    TABLE_FORMATS,
    JsonOpt,
    MaxParamsOpt,
    SetOpt,
    SpecArg,
    WeightsOpt,
    apply_max_params,
    format_option,
    pick_format,
    weights_override,
)
from kbuilder.cli.output import Output, error_payload
from kbuilder.errors import RuntimeFailure, SpecError
from kbuilder.report import RENDERERS, Report
from kbuilder.report.cross_check import report_differences
from kbuilder.report.render import terminal_width
from kbuilder.weights.missing import spec_source_missing
from kbuilder.weights.table import plan_json, render_plan
from kbuilder.zoo import spec_path

KerasOpt = typer.Option(
    False,
    "--keras",
    help="Build the model with Keras (seconds) and check every figure of the table against it.",
)
DepthOpt = typer.Option(
    None,
    "--depth",
    min=0,
    help="Show layers inside at most N nested blocks; deeper ones fold into their block's subtotal row.",
)
PARTIAL_HINT = "the table above shows every layer built before the failing one"


def measure(spec: str, overrides: Sequence[str], *, keras: bool = False) -> tuple[Any, list[str]]:
    """The model the table is made of, and notes for the user: the spec's static model, or
    the Keras model where one is needed (`keras`, trained weights to load and match) or the
    rules cannot tell a layer's figures."""
    loaded = kb.load(spec_path(spec), overrides)
    if keras or loaded.spec.weights is not None:
        # The spec's own source, not made yet (a run to fine-tune from): the figures, and a note;
        # one asked for on the command line (--weights, --set weights...) must load.
        asked = keras or any(path[:1] == ("weights",) for path in loaded.source.overridden)
        missing = None if asked else spec_source_missing(loaded)
        if missing is None:
            return kb.build(loaded), []
        notes = [f"weights not checked: {missing} (the figures come from the spec alone)"]
        static = kb.static(loaded)
        return (
            (static, notes)
            if static.complete
            else (kb.build(loaded, weights=False), [*notes, static.fallback_note()])
        )
    model = kb.static(loaded)
    if model.complete:
        return model, []
    return kb.build(loaded), [model.fallback_note()]


def render(model: Any, fmt: str, depth: int | None = None) -> tuple[Report, dict, str]:
    """The report of a static or built model, as JSON data and as text in `fmt` (rows down
    to `depth` nested blocks, columns that fit the terminal)."""
    rep = kb.report(model)
    data, text = rep.as_json(), RENDERERS[fmt](rep, depth=depth, width=terminal_width())
    plan = getattr(model, "weights", None)
    if plan is not None:  # the spec's trained weights, loaded: where each layer's came from
        data["weights"] = plan_json(plan)
        if fmt not in ("json", "csv"):
            text += "\n" + render_plan(plan, fmt, terminal_width())
    return rep, data, text


def cross_check(built: Any, rep: Report) -> tuple[RuntimeFailure | None, list[str]]:
    """`--keras`: the error listing every figure where the spec's rules differ from the built
    model (a kbuilder bug), or None; and a note when the rules cannot tell every figure."""
    try:
        model = kb.static(built.loaded)
    except SpecError as exc:
        return RuntimeFailure(f"the spec's rules refuse the model Keras built: {exc}"), []
    if not model.complete:
        return None, [f"not cross-checked: {model.fallback_note()}"]
    found = report_differences(kb.report(model), rep)
    if not found:
        return None, []
    return RuntimeFailure(
        "the figures from the spec's rules differ from the model Keras built (a kbuilder bug; "
        "please report it with the spec): " + "; ".join(found)
    ), []


def render_partial(exc: BaseException, fmt: str, depth: int | None = None) -> tuple[dict, str]:
    """The error object of a failed build, with the rows of the layers built before the
    failing one (`layers_built`), and the table of those rows for people."""
    data = error_payload(exc)
    partial = getattr(exc, "partial", None)
    if partial is None:
        return data, ""
    rep = kb.report(partial)
    rep.name = f"{rep.name} (built up to the failing layer)"
    rep.output_shape = rep.rows[-1].output_shape  # the last layer built, not a list of every one
    data["layers_built"] = rep.as_json()["layers"]
    return data, ("" if fmt == "json" else RENDERERS[fmt](rep, depth=depth, width=terminal_width()))


def fail_with_partial(exc: BaseException, fmt: str, depth: int | None = None) -> None:
    """Report a failed build: the partial table (stdout), then the error; one JSON document."""
    data, text = render_partial(exc, fmt, depth)
    output = Output(fmt == "json")
    if fmt == "json":
        output.error_document(exc, data)
    else:
        if text:
            sys.stdout.write(text)
            sys.stdout.flush()
        output.error(exc, hint=PARTIAL_HINT if text else None)
    raise typer.Exit(data["exit_code"])


def register(app: typer.Typer) -> None:
    @app.command()
    def build(
        spec: str = SpecArg,
        overrides: list[str] | None = SetOpt,
        fmt: str | None = format_option(TABLE_FORMATS),
        json_out: bool = JsonOpt,
        max_params: str | None = MaxParamsOpt,
        export: Path | None = typer.Option(None, "--export", help="Also export SavedModel + .keras to DIR."),
        keras: bool = KerasOpt,
        depth: int | None = DepthOpt,
        weights: str | None = WeightsOpt,
    ) -> None:
        """Print one row per layer with totals, from the spec alone (no Keras unless --keras,
        --export or trained weights to load ask for the model)."""
        apply_max_params(max_params)
        fmt = pick_format(fmt, json_out)
        overrides = [*(overrides or ()), *weights_override(weights)]
        try:
            model, notes = measure(spec, overrides, keras=keras or export is not None)
        except SpecError as exc:
            if getattr(exc, "partial", None) is None:
                raise
            fail_with_partial(exc, fmt, depth)
        rep, data, text = render(model, fmt, depth)
        failure = None
        if keras:
            failure, more = cross_check(model, rep)
            notes += more
        if export is not None and failure is None:
            path = kb.export(model, export)
            data["export"] = str(path)
            text += f"exported to {path}\n"
        output = Output(fmt == "json")
        if failure is not None:
            if fmt != "json":
                output.result({}, text, [*model.graph.warnings, *notes])
            raise typer.Exit(output.error(failure))
        output.result(data, text, [*model.graph.warnings, *notes])
