"""`profile(built, options)`: the per-layer times, the memory per batch size and the throughput
of a built model, against the machine's peak (what `kbuilder profile` prints)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras

from kbuilder.profile.calls import quiet_retracing
from kbuilder.profile.layers import LayerProfile, profile_layers
from kbuilder.profile.memory import MemoryModel, memory_model
from kbuilder.profile.options import ProfileOptions, check_batch_sizes
from kbuilder.profile.throughput import Throughput, measure_throughput, plot_throughput
from kbuilder.report.rows import make_report
from kbuilder.spec.train.optim import Adam
from kbuilder.train.compile import make_optimizer
from kbuilder.train.peak import Peak, machine_peak
from kbuilder.train.performance import describe_device

DEFAULT_BATCH_SIZE = 32  # a spec without a train section


@dataclass
class Profile:
    name: str
    backend: str
    device: str
    peak: Peak
    macs: int
    layers: LayerProfile
    throughput: list[Throughput]
    memory: MemoryModel
    memory_budget: int | None = None
    built: Any = None  # the kbuilder.build.BuiltModel measured
    plot: Path | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def batch_sizes(self) -> list[int]:
        return [t.batch_size for t in self.throughput]

    @property
    def largest_batch(self) -> int | None:
        return None if self.memory_budget is None else self.memory.largest_batch(self.memory_budget)

    def batch_rows(self) -> list[dict[str, Any]]:
        """Throughput and memory per batch size, one row each."""
        return [
            {**t.as_json(self.macs, self.peak), **_memory_columns(self.memory.at(t.batch_size).as_json())}
            for t in self.throughput
        ]

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "backend": self.backend,
            "device": self.device,
            "peak_flop_per_s": round(self.peak.flop_per_s, 1),
            "peak_source": self.peak.source,
            "macs_per_sample": self.macs,
            "layers": self.layers.as_json(),
            "batch_sizes": self.batch_rows(),
            "memory": {
                "parameters": self.memory.parameters,
                "gradients": self.memory.gradients,
                "optimizer_state": self.memory.optimizer_state,
                "optimizer": self.memory.optimizer,
                "activation_bytes_per_sample": self.memory.activation_bytes_per_sample,
                "budget": self.memory_budget,
                "largest_batch_size": self.largest_batch,
            },
            "plot": str(self.plot) if self.plot else None,
            "notes": self.notes,
        }


def _memory_columns(estimate: dict[str, Any]) -> dict[str, Any]:
    return {f"memory_{k}": v for k, v in estimate.items() if k != "batch_size"}


def optimizer_factory(built: Any) -> tuple[Any, str, list[str]]:
    """A maker of fresh optimizers as the spec's train section says (Adam without one)."""
    train = built.loaded.spec.train
    notes: list[str] = []
    if train is None:
        spec: Any = Adam.model_validate({"type": "adam"})
        notes.append("the spec has no train section: optimizer state as for Adam")
        epochs = 1
    else:
        spec, epochs = train.optimizer, train.epochs
    return (lambda: make_optimizer(spec, steps_per_epoch=100, epochs=epochs)), str(spec.type), notes


def profile(built: Any, options: ProfileOptions) -> Profile:
    """Measure a kbuilder.build.BuiltModel on the current Keras backend."""
    spec = built.loaded.spec
    sizes = options.batch_sizes or (spec.train.batch_size if spec.train else DEFAULT_BATCH_SIZE,)
    check_batch_sizes(tuple(sizes))
    backend = keras.backend.backend()
    device, accelerator = describe_device(backend)
    new_optimizer, optimizer_name, notes = optimizer_factory(built)
    with quiet_retracing():
        layers = profile_layers(built, sizes[0], train=options.train, repeats=options.repeats)
        throughput = measure_throughput(built, sizes, new_optimizer, repeats=options.repeats)
    result = Profile(
        name=spec.name,
        backend=backend,
        device=device,
        peak=machine_peak(backend, device, accelerator=accelerator),
        macs=make_report(built).macs,
        layers=layers,
        throughput=throughput,
        memory=memory_model(built.model, new_optimizer(), optimizer_name),
        memory_budget=options.memory,
        built=built,
        notes=notes,
    )
    if options.plot is not None:
        result.plot = plot_throughput(result.batch_rows(), options.plot, title=f"{spec.name} ({backend})")
    return result
