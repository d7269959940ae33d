"""The Python API that the CLI and notebooks share.

import kbuilder
built = kbuilder.build("specs/lenet5.yaml")     # .model is a keras.Model
print(kbuilder.table(built))                     # the layer table as text
kbuilder.check(built)                            # raises CheckFailed on a mismatch
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kbuilder.errors import CheckFailed
from kbuilder.spec import LoadedSpec, load_spec


def load(spec: str | Path | LoadedSpec, overrides: Sequence[str] = ()) -> LoadedSpec:
    """Read and validate a spec (no TensorFlow/Keras import)."""
    return spec if isinstance(spec, LoadedSpec) else load_spec(spec, overrides=overrides)


def validate(spec: str | Path | LoadedSpec, overrides: Sequence[str] = (), *, shapes: bool = True):
    """Validate and expand a spec; returns its layer graph (still no Keras). With `shapes`,
    every layer's output shape is computed statically and shape mistakes raise BuildError."""
    from kbuilder.graph import expand

    graph = expand(load(spec, overrides))
    if shapes:
        from kbuilder.graph.shapes import static_shapes

        static_shapes(graph)
    return graph


def build(spec: str | Path | LoadedSpec, overrides: Sequence[str] = (), max_params: int | None = None):
    """Build the Keras model; returns a BuiltModel (`.model`, `.graph`, `.loaded`).
    A model over `max_params` parameters (default: KBUILDER_MAX_PARAMS or 2e9) is refused
    before any weight is allocated."""
    from kbuilder.build import build as build_loaded

    return build_loaded(load(spec, overrides), max_params)


def report(built):
    from kbuilder.report import make_report

    return make_report(built)


def table(built, fmt: str = "plain") -> str:
    from kbuilder.report import RENDERERS

    return RENDERERS[fmt](report(built))


def differences(built, rep=None) -> list[str]:
    """How the built model differs from the spec's `expect` (empty when it matches)."""
    from kbuilder.report import compare

    return compare(rep or report(built), built.loaded.spec.expect, built.graph.aliases)


def check(built) -> None:
    diffs = differences(built)
    if diffs:
        raise CheckFailed(diffs)


def manifest(built) -> dict[str, Any]:
    """What traces an export back to its spec: the resolved spec and its hash."""
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
    }


def export(
    built,
    directory: str | Path,
    *,
    verify: bool = True,
    formats: Sequence[str] = (),
    quantize: str = "none",
    data_dir: str | Path | None = None,
) -> Path:
    """SavedModel + .keras (+ "onnx", "tflite" in `formats`) + manifest.json, written
    atomically and verified; `quantize` ("float16", "int8") applies to the TFLite file, int8
    calibrated on the spec's train.data (`data_dir` as for training)."""
    from kbuilder.export import export_model

    calibration = None
    if quantize == "int8":
        from kbuilder.train.calibration import spec_samples

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
    spec: str | Path | LoadedSpec,
    path: str | Path | None = None,
    *,
    collapse: bool = False,
    depth: int | None = None,
    shapes: bool = True,
    fold: Sequence[str] = (),
    overrides: Sequence[str] = (),
):
    """Draw the architecture; writes `path` (.svg, .png, .pdf or .dot) when given.

    Returns a `kbuilder.diagram.Diagram` (boxes, edges, groups; `.counts()`). `collapse`
    draws each innermost block as one box, `depth` keeps that many levels of nesting open,
    `fold` names blocks or composite kinds to draw as one box each (`["bottleneck"]`);
    `shapes=False` skips building the model (no Keras), so boxes show no output shape.
    """
    from kbuilder.diagram.draw import draw

    result, _ = draw(
        load(spec, overrides),
        Path(path) if path is not None else None,
        collapse=collapse,
        depth=depth,
        shapes=shapes,
        fold=fold,
    )
    return result
