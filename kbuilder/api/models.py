"""The model commands: build, report/table, check, export, diagram, schema, zoo.

Each one validates its spec (kbuilder.api.loading) before it imports Keras: that is why the
modules that need Keras are imported inside the functions, each saying so.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kbuilder.api.loading import SpecSource, validated
from kbuilder.backend import before_keras
from kbuilder.errors import CheckFailed, UsageError
from kbuilder.spec import LoadedSpec
from kbuilder.zoo import ZooEntry, zoo_entries

if TYPE_CHECKING:
    from kbuilder.build import BuiltModel
    from kbuilder.diagram.structure import Diagram
    from kbuilder.report.rows import Report


def build(spec: SpecSource, overrides: Sequence[str] = (), max_params: int | None = None) -> BuiltModel:
    """Build the Keras model; returns a BuiltModel (`.model`, `.graph`, `.loaded`).
    A model over `max_params` parameters (default: KBUILDER_MAX_PARAMS or 2e9) is refused
    before any weight is allocated. A shape problem raises BuildError carrying `.partial`,
    the model of the layers built before it (so no static shape check here).

    Example: `kb.build("lenet5_modern").model.summary()`"""
    loaded = validated(spec, overrides, shapes=False)
    before_keras()
    from kbuilder.build import build as build_loaded  # imports Keras: only once the spec validated

    return build_loaded(loaded, max_params)


def _built(model: Any, overrides: Sequence[str] = (), *, shapes: bool = False) -> BuiltModel:
    """A BuiltModel as it is; any spec source is built (with `shapes`, once its shapes passed
    the static check: an error then comes before Keras loads, without the partial table)."""
    if not isinstance(model, (str, Path, Mapping, LoadedSpec)):
        return model
    if shapes:
        model, overrides = validated(model, overrides, shapes=True), ()
    return build(model, overrides)


def report(model: Any) -> Report:
    """The figures of a built model (or spec): rows per layer, totals, MACs.

    Example: `kb.report("lenet5").params`"""
    built = _built(model)
    from kbuilder.report import make_report  # may import Keras: only once the spec validated

    return make_report(built)


def table(model: Any, fmt: str = "plain") -> str:
    """The layer table as text: `fmt` is plain, rich, markdown, json or csv.

    Example: `print(kb.table("lenet5", "markdown"))`"""
    rep = report(model)
    from kbuilder.report import RENDERERS  # may import Keras: only once the spec validated

    if fmt not in RENDERERS:
        raise UsageError(f"unknown table format '{fmt}'; choose one of {', '.join(RENDERERS)}")
    return RENDERERS[fmt](rep)


def differences(model: Any, rep: Report | None = None) -> list[str]:
    """How the built model differs from the spec's `expect` (empty when it matches).

    Example: `kb.differences(kb.build("lenet5"))` -> `[]`"""
    built = _built(model)
    from kbuilder.report import compare  # may import Keras: only once the spec validated

    return compare(rep or report(built), built.loaded.spec.expect, built.graph.aliases)


def check(model: Any, overrides: Sequence[str] = ()) -> BuiltModel:
    """Build a spec (or take a built model) and compare it with its `expect`; returns the
    built model, raises CheckFailed listing every difference.

    Example: `kb.check("specs/mnist_mlp.yaml")`"""
    built = _built(model, overrides)
    diffs = differences(built)
    if diffs:
        raise CheckFailed(diffs)
    return built


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
    }


def export(
    model: Any,
    directory: str | Path,
    *,
    verify: bool = True,
    formats: Sequence[str] = (),
    quantize: str = "none",
    data_dir: str | Path | None = None,
    overrides: Sequence[str] = (),
) -> Path:
    """SavedModel + .keras (+ "onnx", "tflite" in `formats`) + manifest.json of a built model
    or spec, written atomically and verified on reload; `quantize` ("float16", "int8") applies
    to the TFLite file, int8 calibrated on the spec's train.data (`data_dir` as for training).

    Example: `kb.export("lenet5", "out/lenet5", formats=["onnx", "tflite"])`"""
    if quantize not in ("none", "float16", "int8"):
        raise UsageError(f"unknown quantization '{quantize}'; choose none, float16 or int8")
    built = _built(model, overrides, shapes=True)
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
) -> Diagram:
    """Draw the architecture; writes `path` (.svg, .png, .pdf, .html or .dot) when given.

    Returns a `kbuilder.diagram.Diagram` (boxes, edges, groups; `.counts()`). `collapse`
    draws each innermost block as one box, `depth` keeps that many levels of nesting open,
    `fold` names blocks or composite kinds to draw as one box each (`["bottleneck"]`);
    `shapes=False` skips building the model (no Keras), so boxes show no output shape.

    Example: `kb.diagram("resnet50", "resnet50.svg", collapse=True)`"""
    loaded = validated(spec, overrides, shapes=shapes)
    if shapes:
        before_keras()
    from kbuilder.diagram.draw import draw  # builds the model (Keras) for its shapes

    result, _ = draw(
        loaded,
        Path(path) if path is not None else None,
        collapse=collapse,
        depth=depth,
        shapes=shapes,
        fold=fold,
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
