"""`kbuilder profile`: time per layer, memory per batch size, throughput against the peak."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from kbuilder.api.loading import SpecSource, validated
from kbuilder.backend import before_keras, select_backend
from kbuilder.errors import UsageError
from kbuilder.profile.options import ProfileOptions, check_batch_sizes, parse_size

if TYPE_CHECKING:
    from kbuilder.profile.run import Profile


def profile(
    spec: SpecSource,
    overrides: Sequence[str] = (),
    *,
    batch_sizes: Sequence[int] = (),
    train: bool = False,
    memory: int | str | None = None,
    backend: str | None = None,
    repeats: int = 10,
    plot: str | Path | None = None,
) -> Profile:
    """Build the spec's model and measure it on this machine: each layer's forward time (and
    backward with `train`) at the first of `batch_sizes` (default: the spec's batch size),
    the whole step, samples per second and memory at every batch size, the largest batch
    that fits `memory` ("8GiB" or bytes), a throughput plot at `plot` (PNG).

    Example: `kb.profile("lenet5_modern", batch_sizes=[128], train=True).layers.difference`"""
    budget = parse_size(memory) if isinstance(memory, str) else memory
    if repeats < 3:
        raise UsageError(f"--repeats {repeats}: at least 3 repeats are timed (the fastest counts)")
    check_batch_sizes(tuple(batch_sizes))
    loaded = validated(spec, overrides, shapes=True)
    chosen = select_backend(backend)
    before_keras(chosen)
    from kbuilder.build import build  # imports Keras: only once the spec validated
    from kbuilder.profile.run import profile as measure

    options = ProfileOptions(
        batch_sizes=tuple(batch_sizes),
        train=train,
        memory=budget,
        repeats=repeats,
        plot=Path(plot) if plot is not None else None,
    )
    return measure(build(loaded), options)
