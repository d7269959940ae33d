"""The spec's `weights` section: trained weights the built model starts from.

Pure Pydantic (no Keras). Example:

    weights:
      from: runs/lenet5_modern-20261206     # a run, export, .keras, .weights.h5, legacy .h5
      exclude: [predictions]                # a new head: keeps its initial weights
      map: {"stage*-conv": "block*_conv"}    # spec-layer glob: source-layer glob

The file is read and matched by kbuilder.weights once the model is built; a relative `from`
is resolved against the spec file's folder when the spec loads (kbuilder.spec.load_spec).
"""

from pathlib import Path
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, model_validator

from kbuilder.spec.base import StrictModel

Glob = Annotated[
    str,
    Field(
        min_length=1,
        max_length=300,
        pattern=r"^[A-Za-z0-9_.*?\[\]!/:-]+$",
        description="A layer name or a glob (`*`, `?`, `[...]`) over layer names.",
    ),
]
MatchRule = Literal["auto", "name", "order", "map"]


class WeightsSpec(StrictModel):
    """Where the model's starting weights come from and how they are matched to its layers."""

    # `from` is a Python keyword: the field carries it as its alias (also when written out).
    model_config = ConfigDict(**StrictModel.model_config, serialize_by_alias=True)

    from_: str = Field(
        alias="from",
        min_length=1,
        max_length=4096,
        description="A kbuilder run, ensemble member or export directory, a .keras file, a Keras "
        ".weights.h5 file or a legacy HDF5 weights file (relative to the spec file's folder).",
    )
    match: MatchRule = Field(
        "auto",
        description="How source tensors find their layers: by layer name (auto's choice for Keras "
        "sources), by the order of weighted layers (auto's choice for PyTorch state_dicts), or by "
        "`map` (then by name for the layers it does not cover).",
    )
    map: dict[Glob, Glob] = Field(
        default_factory=dict,
        max_length=1000,
        description="Spec-layer glob -> source-layer glob: each `*`/`?` the spec side matches fills "
        "the source side's in turn (`stage*-conv1: conv*_block1_conv`); the first entry that matches wins.",
    )
    include: list[Glob] | None = Field(
        None,
        min_length=1,
        max_length=1000,
        description="Load only the spec layers these globs name (a layer, or a block's name for all of "
        "its layers); the others keep their initial weights.",
    )
    exclude: list[Glob] = Field(
        default_factory=list,
        max_length=1000,
        description="Layers that keep their initial weights (a replaced head), by spec or source "
        "name; shown as `new` in the plan.",
    )

    epsilon: float | None = Field(
        1e-5,
        gt=0,
        description="PyTorch sources: the batch/layer-norm epsilon the weights were trained with "
        "(PyTorch's default 1e-5), checked against the spec's; null skips the check.",
    )

    @model_validator(mode="after")
    def _map_with_its_rule(self):
        if self.match == "map" and not self.map:
            raise ValueError("match: map needs a `map` of spec-layer glob: source-layer glob")
        if self.map and self.match in ("name", "order"):
            raise ValueError(f"a `map` applies with match: map (or auto), not match: {self.match}")
        return self

    def resolved(self, folder: Path | None) -> "WeightsSpec":
        """This section with a relative `from` made absolute against `folder` (the spec's)."""
        path = Path(self.from_).expanduser()
        if path.is_absolute() or folder is None:
            return self
        return self.model_copy(update={"from_": str((folder / path).resolve())})
