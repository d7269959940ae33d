"""`kbuilder import`: a Keras model (a `.keras` file or a keras.applications name) as a spec."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kbuilder.backend import before_keras
from kbuilder.errors import CheckFailed
from kbuilder.importer.archive import read_keras_archive
from kbuilder.importer.keras_graph import read_keras_config
from kbuilder.storage.atomic import write_text

if TYPE_CHECKING:
    from kbuilder.importer.convert import Imported
    from kbuilder.importer.exactness import Exactness


@dataclass
class ImportResult:
    """The written spec and how it compares with its source."""

    imported: Imported
    output: Path | None
    params: int
    output_shape: list[Any]
    exactness: Exactness | None  # None for a .keras file: its weights are not read here

    @property
    def text(self) -> str:
        return self.imported.text

    def summary(self) -> dict[str, Any]:
        imported, exact = self.imported, self.exactness
        return {
            "source": imported.source,
            "output": str(self.output) if self.output else None,
            "layers": len(imported.layers),
            "spec_lines": imported.spec_lines,
            "repeated_runs": len(imported.runs),
            "folded_runs": len(imported.folds),
            "flat_spec_lines": imported.flat_lines,
            "params": self.params,
            "output_shape": self.output_shape,
            "exact": exact.exact if exact else None,
            "max_abs_diff": exact.max_abs_diff if exact else None,
            "max_relative_diff": exact.max_relative_diff if exact else None,
            "weights_copied": exact.layers_copied if exact else None,
        }


def import_model(
    source: str | Path,
    output: str | Path | None = None,
    *,
    input_shape: tuple[int, ...] | None = None,
    check: bool = True,
) -> ImportResult:
    """Write a Keras model as a spec. `source`: a `.keras` file (only its config.json is read,
    nothing deserialized) or a keras.applications name (`ResNet50`, built with weights=None).
    The spec is validated and built before it is written; for an applications model `check`
    also copies the model's weights into it by layer name and compares outputs on random
    inputs (CheckFailed when parameters, output shape or outputs differ). A layer with no
    kbuilder kind raises SpecError naming it and the kinds needed; nothing is written then.

    Example: `kb.import_model("MobileNetV2", "mobilenet_v2.yaml", input_shape=(96, 96, 3))`"""
    path = Path(source)
    is_file = path.suffix == ".keras" or path.exists()
    # A file is read (and a crafted one refused) before Keras loads: that takes seconds.
    graph = read_keras_config(read_keras_archive(path), str(path)) if is_file else None
    before_keras()
    from kbuilder.importer.convert import import_application, import_keras_file  # imports Keras
    from kbuilder.importer.exactness import check_built, compare  # imports Keras

    imported = import_keras_file(path, graph) if is_file else import_application(str(source), input_shape)
    exactness = compare(imported.text, imported.model) if check and imported.model is not None else None
    if exactness is not None:
        if not exactness.exact:
            raise CheckFailed(
                [
                    (
                        f"the imported spec differs from {imported.source}: params {exactness.params:,} vs "
                        f"{exactness.source_params:,}, output {exactness.output_shape} vs "
                        f"{exactness.source_output_shape}, max relative output difference "
                        f"{exactness.max_relative_diff:.3g}"
                    )
                ]
            )
        params, shapes = exactness.params, exactness.output_shape
    else:
        params, shapes = check_built(imported.text)
    target = Path(output) if output is not None else None
    if target is not None:
        write_text(target, imported.text)
    return ImportResult(imported, target, params, shapes, exactness)
