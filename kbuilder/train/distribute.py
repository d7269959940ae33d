"""Several devices or processes on existing engines.

- TensorFlow, one machine: tf.distribute.MirroredStrategy (Keras 3 supports it in fit).
- JAX, one or several machines: keras.distribution.DataParallel; several processes first join
  JAX's distributed runtime (jax.distributed.initialize). On CPUs the collectives go through
  gloo, which also lets several processes on one machine train together (used by the tests).
TensorFlow's MultiWorkerMirroredStrategy is not used: Keras 3's fit fails with it
(keras-team/keras#20585).

This module imports no backend at its top: joining JAX's runtime must come before anything
(Keras included) starts the backend, and each backend's module is imported only on it.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

from kbuilder.errors import UsageError


@dataclass
class Distribution:
    """What was set up: a description for metrics.json and a scope to build/compile in."""

    kind: str  # none | mirrored | data_parallel
    replicas: int
    processes: int
    process_id: int
    strategy: Any = None

    def scope(self):
        return self.strategy.scope() if self.strategy is not None else nullcontext()

    @property
    def chief(self) -> bool:
        return self.process_id == 0


def join_processes(spec, backend: str) -> None:
    """Join JAX's distributed runtime; must run before JAX computes anything."""
    if not spec.multi_process:
        return
    if backend != "jax":
        raise UsageError("multi-process training needs the JAX backend (--backend jax)")
    import jax  # deferred: see the module's docstring

    # CPU devices of different processes all-reduce through gloo (no effect on GPUs).
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=spec.coordinator_address,
        num_processes=spec.num_processes,
        process_id=spec.process_id,
    )


def local_accelerators(backend: str) -> int:
    if backend == "tensorflow":
        import tensorflow as tf  # deferred: each backend's module only on that backend

        return len(tf.config.list_logical_devices("GPU"))
    if backend == "jax":
        import jax  # deferred: each backend's module only on that backend

        return sum(1 for d in jax.local_devices() if d.platform != "cpu")
    import torch  # deferred: each backend's module only on that backend

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def set_up(spec, backend: str) -> Distribution:
    """Choose and install the distribution (call after join_processes and before building the model)."""
    strategy = spec.strategy
    if spec.multi_process:
        strategy = "data_parallel"
    elif strategy == "auto":
        many = local_accelerators(backend) > 1
        strategy = ("mirrored" if backend == "tensorflow" else "data_parallel") if many else "none"
    if strategy == "none":
        return Distribution("none", 1, 1, 0)
    if strategy == "mirrored":
        if backend != "tensorflow":
            raise UsageError(f"the 'mirrored' strategy is TensorFlow's; on {backend} use data_parallel")
        import tensorflow as tf  # deferred: each backend's module only on that backend

        # Every local GPU; without one, every logical CPU device (one unless the CPU was split,
        # as the tests do to run two real replicas on one CPU).
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        mirrored = tf.distribute.MirroredStrategy([device.name for device in devices])
        return Distribution("mirrored", mirrored.num_replicas_in_sync, 1, 0, mirrored)
    if backend != "jax":
        raise UsageError(
            f"the 'data_parallel' strategy runs on the JAX backend, not {backend} (use mirrored on TensorFlow)"
        )
    import jax  # deferred: see the module's docstring
    import keras

    devices = jax.devices()
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
    return Distribution("data_parallel", len(devices), spec.num_processes, spec.process_id)
