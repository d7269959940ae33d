"""The model commands: build, report/table, check, export, diagram, schema, zoo.

Each one validates its spec (kbuilder.api.loading) before it imports Keras: that is why the
modules that need Keras are imported inside the functions, each saying so.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kbuilder.api.loading import SpecSource, load, validate, validated
from kbuilder.backend import before_keras
from kbuilder.build.static import StaticModel, static_build
from kbuilder.errors import CheckFailed, UsageError
from kbuilder.graph import Graph
from kbuilder.report.check import compare
from kbuilder.report.render import RENDERERS
from kbuilder.report.rows import Report
from kbuilder.report.static import static_report
from kbuilder.spec import LoadedSpec
from kbuilder.zoo import ZooEntry, zoo_entries

if TYPE_CHECKING:
    from kbuilder.build import BuiltModel
    from kbuilder.diagram.structure import Diagram


def build(
    spec: SpecSource,
    overrides: Sequence[str] = (),
    max_params: int | None = None,
    *,
    weights: bool | str | Path = True,
) -> BuiltModel:
    """Build the Keras model; returns a BuiltModel (`.model`, `.graph`, `.loaded`, `.weights`).
    A model over `max_params` parameters (default: KBUILDER_MAX_PARAMS or 2e9) is refused
    before any weight is allocated. A shape problem raises BuildError carrying `.partial`,
    the model of the layers built before it (so no static shape check here). The spec's
    `weights` section is loaded (`.weights` is its LoadPlan); `weights=False` leaves the
    initial weights, a path loads that source instead (docs/weights.md).

    Example: `kb.build("lenet5_modern").model.summary()`"""
    loaded = validated(spec, overrides, shapes=False)
    before_keras()
    from kbuilder.build import build as build_loaded  # imports Keras: only once the spec validated

    built = build_loaded(loaded, max_params)
    if weights is not False and (weights is not True or loaded.spec.weights is not None):
        load_weights(built, None if weights is True else weights)
    return built


def load_weights(built: BuiltModel, source: str | Path | None = None) -> Any:
    """Load trained weights into a built model: the spec's `weights` section, or `source` (a
    run or export directory, .keras, .weights.h5, legacy .h5) matched with the section's
    rules. Returns the LoadPlan (also set as `built.weights`); every mismatch raises a
    SpecError located at the spec's layer, before any layer changes.

    Example: `kb.load_weights(kb.build(spec, weights=False), "runs/x").counts()`"""
    from kbuilder.weights.load import load_weights as load_into  # imports Keras and h5py

    built.weights = load_into(built, source)
    return built.weights


def weights_table(plan: Any, fmt: str = "plain") -> str:
    """A LoadPlan as text: plain, rich, markdown or json (one row per weighted layer).

    Example: `print(kb.weights_table(kb.build("specs/finetune.yaml").weights))`"""
    from kbuilder.weights.table import render_plan  # rich and the plan's types: only when asked

    return render_plan(plan, fmt)


def _built(
    model: Any, overrides: Sequence[str] = (), *, shapes: bool = False, weights: str | Path | None = None
) -> BuiltModel:
    """A BuiltModel as it is; any spec source is built (with `shapes`, once its shapes passed
    the static check: an error then comes before Keras loads, without the partial table)."""
    if not isinstance(model, (str, Path, Mapping, LoadedSpec)):
        if weights is not None:
            load_weights(model, weights)
        return model
    if shapes:
        model, overrides = validated(model, overrides, shapes=True), ()
    return build(model, overrides, weights=True if weights is None else weights)


def static(
    spec: SpecSource | Graph, overrides: Sequence[str] = (), max_params: int | None = None
) -> StaticModel:
    """The model as the spec's rules see it, without Keras: every layer's output shape,
    parameters (trainable split), MACs and receptive field, walked as `build` builds (same
    shape checks, same parameter budget, same errors, each carrying `.partial`). Returns a
    StaticModel (`.graph`, `.loaded`, `.figures`); `.complete` is False when a layer's figures
    are beyond its kind's rules (`.fallback_note()` says which), and its table then needs Keras.

    Example: `kb.static("resnet50").figures["predictions"].params`"""
    if isinstance(spec, Graph):
        return static_build(spec, None, max_params)
    loaded = load(spec, overrides)
    graph = validate(loaded, shapes=False)  # expanded once; shape problems come from the walk, located
    return static_build(graph, loaded, max_params)


def _measured(model: Any, overrides: Sequence[str] = (), *, keras: bool = False) -> StaticModel | BuiltModel:
    """What a table is made of: a built model as it is; a spec (or graph) by its rules, or
    built with `keras` or where the rules cannot tell a layer's figures (with a warning)."""
    if isinstance(model, (str, Path, Mapping, LoadedSpec, Graph)):
        if keras and not isinstance(model, Graph):
            return build(model, overrides)
        model = static(model, overrides)
    if not isinstance(model, StaticModel):
        return model  # a BuiltModel
    if model.complete and not keras:
        return model
    if model.loaded is None:
        raise UsageError(
            "building the model with Keras needs its spec: pass the file, text, dict or LoadedSpec"
        )
    if not model.complete:
        warnings.warn(model.fallback_note(), stacklevel=3)
    return build(model.loaded)


def report(model: Any, *, keras: bool = False) -> Report:
    """The layer table's data: rows per layer, totals, group subtotals. A spec (path, name,
    text, dict, LoadedSpec), a graph or a StaticModel is measured by its rules, without Keras;
    a BuiltModel, or any of them with `keras=True`, from the Keras model. Both give the same
    figures.

    Example: `kb.report("lenet5").params`"""
    measured = _measured(model, keras=keras)
    if isinstance(measured, StaticModel):
        return static_report(measured)
    from kbuilder.report.rows import make_report  # reads Keras layers: the model is built already

    return make_report(measured)


def table(
    model: Any, fmt: str = "plain", *, keras: bool = False, depth: int | None = None, width: int | None = None
) -> str:
    """The layer table as text: `fmt` is plain, rich, markdown, json or csv; `model` as for
    `report` (a spec needs no Keras); `depth` folds layers nested deeper than that many blocks
    into their block's row; `width` leaves out columns until the table fits (rich, plain).

    Example: `print(kb.table("lenet5", "markdown"))`"""
    if fmt not in RENDERERS:
        raise UsageError(f"unknown table format '{fmt}'; choose one of {', '.join(RENDERERS)}")
    return RENDERERS[fmt](report(model, keras=keras), depth=depth, width=width)


def differences(model: Any, rep: Report | None = None) -> list[str]:
    """How the model differs from its spec's `expect` (empty when it matches); `model` as for
    `report` (a spec is measured by its rules), `rep` its report when already made.

    Example: `kb.differences("lenet5")` -> `[]`"""
    measured = _measured(model)
    if measured.loaded is None:
        raise UsageError("a graph has no `expect`: pass its spec (file, text, dict or LoadedSpec)")
    return compare(rep or report(measured), measured.loaded.spec.expect, measured.graph.aliases)


def check(model: Any, overrides: Sequence[str] = (), *, keras: bool = False) -> Report:
    """Measure a spec (by its rules; built with `keras=True`) or take a built model, and
    compare it with the spec's `expect`; returns its report, raises CheckFailed listing every
    difference.

    Example: `kb.check("specs/mnist_mlp.yaml").params`"""
    measured = _measured(model, overrides, keras=keras)
    rep = report(measured)
    diffs = differences(measured, rep)
    if diffs:
        raise CheckFailed(diffs)
    return rep


def manifest(built: BuiltModel) -> dict[str, Any]:
    """What traces an export back to its spec: the resolved spec and its hashes.

    Example: `kb.manifest(built)["resolved_spec_sha256"]`"""
    loaded = built.loaded
    resolved = loaded.spec.model_dump(mode="json")
    digest = hashlib.sha256(json.dumps(resolved, sort_keys=True).encode()).hexdigest()
    source_digest = hashlib.sha256(loaded.path.read_bytes()).hexdigest() if loaded.path else None
    return {
        "model": loaded.spec.name,
        "spec_file": str(loaded.path) if loaded.path else None,
        "spec_file_sha256": source_digest,
        "resolved_spec_sha256": digest,
        "resolved_spec": resolved,
        "trained": False,  # fresh random weights: `kb.export_trained` exports a run's
        **({"weights": _weights_record(built.weights)} if built.weights is not None else {}),
    }


def _weights_record(plan: Any) -> dict[str, Any]:
    """Where the export's weights came from (the spec's `weights`: not random, not trained here)."""
    return {"from": plan.source, "match": plan.match, **plan.counts()}


def export(
    model: Any,
    directory: str | Path,
    *,
    verify: bool = True,
    formats: Sequence[str] = (),
    quantize: str = "none",
    data_dir: str | Path | None = None,
    overrides: Sequence[str] = (),
    weights: str | Path | None = None,
) -> Path:
    """SavedModel + .keras (+ "onnx", "tflite" in `formats`) + manifest.json of a built model
    or spec, written atomically and verified on reload; `quantize` ("float16", "int8") applies
    to the TFLite file, int8 calibrated on the spec's train.data (`data_dir` as for training);
    `weights` loads that source into a spec's model (else its `weights` section, if any).

    Example: `kb.export("lenet5", "out/lenet5", formats=["onnx", "tflite"])`"""
    if quantize not in ("none", "float16", "int8"):
        raise UsageError(f"unknown quantization '{quantize}'; choose none, float16 or int8")
    built = _built(model, overrides, shapes=True, weights=weights)
    from kbuilder.export import export_model  # imports Keras: only once the spec validated

    calibration = None
    if quantize == "int8":
        from kbuilder.train.calibration import spec_samples  # the training data pipeline, for int8 only

        calibration = [spec_samples(built.loaded, data_dir)[0]]
    return export_model(
        built.model,
        Path(directory),
        manifest=manifest(built),
        check=verify,
        formats=formats,
        quantize=quantize,
        calibration=calibration,
    )


def diagram(
    spec: SpecSource,
    path: str | Path | None = None,
    *,
    collapse: bool = False,
    depth: int | None = None,
    shapes: bool = True,
    fold: Sequence[str] = (),
    overrides: Sequence[str] = (),
    detail: str = "normal",
    rankdir: str = "TB",
) -> Diagram:
    """Draw the architecture; writes `path` (.svg, .png, .pdf, .html or .dot) when given.

    Returns a `kbuilder.diagram.Diagram` (boxes, edges, groups; `.counts()`). `collapse`
    draws each innermost block as one box, `depth` keeps that many levels of nesting open,
    `fold` names blocks or composite kinds to draw as one box each (`["bottleneck"]`);
    boxes show their output shapes, from the spec's rules (no Keras; `.notes` says where a
    layer beyond its kind's rules made Keras build the model), none with `shapes=False`.
    `detail` is minimal (name, kind, shape), normal (and the main arguments and parameter
    count) or full (every argument the spec sets); `rankdir="LR"` lays it out left to right.

    Example: `kb.diagram("resnet50", "resnet50.svg", collapse=True)`"""
    loaded = validated(spec, overrides, shapes=shapes)
    from kbuilder.diagram.draw import draw  # graphviz and the writers: only when drawing

    result, _ = draw(
        loaded,
        Path(path) if path is not None else None,
        collapse=collapse,
        depth=depth,
        shapes=shapes,
        fold=fold,
        detail=detail,
        rankdir=rankdir,
    )
    return result


def schema() -> dict[str, Any]:
    """The JSON Schema of the spec language (for editors' YAML language servers).

    Example: `kb.schema()["title"]` -> `'kbuilder model spec'`"""
    from kbuilder.spec.schema import json_schema  # builds every kind's model: only when asked

    return json_schema()


def zoo() -> list[ZooEntry]:
    """The bundled specs, each with its description and expected parameter count (no build).

    Example: `[entry.name for entry in kb.zoo()]`"""
    return zoo_entries()
