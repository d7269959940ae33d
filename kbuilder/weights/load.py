"""Load a spec's `weights` into its built model: read the source, match, set the arrays.

    plan = load_weights(built)                       # the spec's `weights` section
    plan = load_weights(built, source="runs/x")      # `--weights`: overrides `weights.from`

The source is read whole and matched before any layer changes, so a mismatch leaves the model
as it was built.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kbuilder.build.budget import max_params_limit
from kbuilder.errors import UsageError
from kbuilder.spec.weights import WeightsSpec
from kbuilder.weights.match import match
from kbuilder.weights.missing import missing_source
from kbuilder.weights.plan import LoadPlan
from kbuilder.weights.sources import read_source


def weights_options(built: Any, source: str | Path | None = None) -> WeightsSpec:
    """The spec's weights section, with `from` replaced by `source` (relative to here) if given."""
    loaded = built.loaded
    options = loaded.spec.weights
    if options is not None and loaded.path is not None:  # a spec revalidated from its data (a tune trial)
        options = options.resolved(Path(loaded.path).parent)
    if source is not None:
        given = str(Path(source).expanduser().resolve())
        options = options.model_copy(update={"from_": given}) if options else WeightsSpec(**{"from": given})
    if options is None:
        raise UsageError(
            f"the spec '{built.loaded.spec.name}' has no weights section and no source was given"
        )
    return options


def plan_weights(built: Any, source: str | Path | None = None) -> LoadPlan:
    """What loading would do, without changing the model (every mismatch raised, located)."""
    options = weights_options(built, source)
    missing = missing_source(built.loaded, options)
    if missing is not None:  # located at the spec's `weights.from`, with how to make the run
        raise missing
    tensors = read_source(options.from_, max_params_limit())
    return match(built, tensors, options)


def apply_plan(model: Any, plan: LoadPlan) -> None:
    """Set each loaded layer's arrays; preprocessing layers recompute what they derive from
    their variables (Normalization's mean and variance) as Keras's own loader has them do."""
    for row in plan.loaded():
        layer = model.get_layer(row.layer)
        layer.set_weights(list(row.arrays))
        finalize = getattr(layer, "finalize_state", None)
        if callable(finalize):
            finalize()


def load_weights(built: Any, source: str | Path | None = None) -> LoadPlan:
    """Load the spec's weights (or `source`'s) into `built.model`; returns the plan."""
    plan = plan_weights(built, source)
    apply_plan(built.model, plan)
    return plan
