"""Resolving the `auto` performance settings for the backend and device at hand.

The defaults come from tools/bench_train.py on the project's 2-core CPU machine (figures in
tools/bench_train.md): fusing many optimizer steps into one compiled call and feeding
numpy batches made the biggest difference; XLA (jit_compile) helps on both TensorFlow and
JAX, except for small convolutional models on a CPU, which TensorFlow's oneDNN kernels run
faster (`settle_for_model`). On a GPU mixed precision is on by default.

This module imports no backend at its top (`apply_threads` runs before the backend starts);
each backend's module is imported inside the function, on that backend only.
"""

from __future__ import annotations

import os
import platform
from dataclasses import asdict, dataclass, replace

from kbuilder.backend import onednn_enabled, tensorflow_available
from kbuilder.errors import UsageError

# Optimizer steps fused into one call when steps_per_execution is auto. Past ~100 the
# per-call overhead is already negligible, while progress bars and batch-level callbacks
# get coarser.
AUTO_FUSED_STEPS = 100

# Below this many multiply-accumulates per sample, a convolutional model trains faster with
# TensorFlow's oneDNN kernels than under XLA on a CPU: LeNet-5 (0.3-0.4M) took 25-36 ms a step
# against 45-71 ms with XLA, while a 6M model was even and Fashion-MNIST's CNN (89M) and the
# text CNN (22M) ran 1.5-2x faster with XLA (batch 128, tools/bench_train.md).
SMALL_CONV_MACS = 2_000_000


@dataclass
class Settings:
    backend: str
    device: str
    accelerator: bool
    jit_compile: bool
    fused_steps: int  # batches per compiled call (1: Keras's own loop)
    keras_steps_per_execution: int
    pipeline: str  # numpy | tf_data
    mixed_precision: str  # float32 | mixed_float16 | mixed_bfloat16
    threads: int | None
    onednn: bool = False  # TensorFlow runs its oneDNN CPU kernels

    def as_dict(self) -> dict:
        return asdict(self)


def describe_device(backend: str) -> tuple[str, bool]:
    """(human description, whether it is an accelerator)."""
    cpu = f"cpu ({os.cpu_count()} cores, {platform.machine()})"
    if backend == "jax":
        import jax  # deferred: only on that backend

        device = jax.devices()[0]
        if device.platform == "cpu":
            return cpu, False
        return (
            f"{device.platform}: {getattr(device, 'device_kind', device)} x{jax.local_device_count()}",
            True,
        )
    if backend == "tensorflow":
        import tensorflow as tf  # deferred: only on that backend

        gpus = tf.config.list_physical_devices("GPU")
        if not gpus:
            return cpu, False
        details = tf.config.experimental.get_device_details(gpus[0])
        return f"gpu: {details.get('device_name', gpus[0].name)} x{len(gpus)}", True
    import torch  # deferred: only on that backend

    if torch.cuda.is_available():
        return f"gpu: {torch.cuda.get_device_name(0)} x{torch.cuda.device_count()}", True
    return cpu, False


def _auto_precision(backend: str, accelerator: bool) -> str:
    if not accelerator:
        return "float32"  # CPUs gain nothing from float16 math and lose accuracy
    capability = None
    if backend == "jax":
        import jax  # deferred: only on that backend

        capability = getattr(jax.devices()[0], "compute_capability", None)
    elif backend == "tensorflow":
        import tensorflow as tf  # deferred: only on that backend

        details = tf.config.experimental.get_device_details(tf.config.list_physical_devices("GPU")[0])
        capability = details.get("compute_capability")
        capability = ".".join(map(str, capability)) if capability else None
    try:
        major = int(str(capability).split(".")[0]) if capability else 0
    except ValueError:
        major = 0
    # bfloat16 needs no loss scaling and runs natively from Ampere (8.x) on.
    return "mixed_bfloat16" if major >= 8 else "mixed_float16"


def resolve(perf, *, backend: str, distribution: str, has_augment: bool, multi_process: bool) -> Settings:
    """Turn the spec's performance section into concrete settings.

    distribution: none | mirrored | data_parallel (what distribute.set_up installed).
    """
    device, accelerator = describe_device(backend)
    distributed = distribution != "none"
    if distribution == "mirrored":
        _check_mirrored(perf)
    jit = (
        perf.jit_compile
        if perf.jit_compile != "auto"
        else backend in ("jax", "tensorflow") and distribution != "mirrored"
    )
    if backend == "torch":
        jit = bool(perf.jit_compile is True)
        if isinstance(perf.steps_per_execution, int) and perf.steps_per_execution > 1:
            raise UsageError(
                f"train.performance.steps_per_execution={perf.steps_per_execution} is not available on the "
                "torch backend (Keras runs one step per call there); use auto or 1"
            )
    pipeline = perf.pipeline
    if pipeline == "auto":
        # TensorFlow consumes tf.data natively (a PyDataset goes through a Python generator,
        # measured ~1.7x slower per epoch on the MNIST MLP); JAX and torch take numpy batches
        # directly. tf.data is also what Keras shards across processes, and it runs
        # augmentation in parallel.
        wants_tf_data = backend == "tensorflow" or multi_process or has_augment
        pipeline = "tf_data" if tensorflow_available() and wants_tf_data else "numpy"
    if pipeline == "tf_data" and not tensorflow_available():
        raise UsageError("performance.pipeline is tf_data but TensorFlow is not installed; use numpy")
    requested = AUTO_FUSED_STEPS if perf.steps_per_execution == "auto" else perf.steps_per_execution
    # Fusing stacks batches on a leading axis, which distribution strategies would split, and
    # gains nothing without a compiler (torch, or jit off): Keras's own loop runs there.
    can_fuse = backend in ("jax", "tensorflow") and jit and not distributed
    fused = requested if can_fuse else 1
    keras_spe = 1 if can_fuse else (requested if perf.steps_per_execution != "auto" else 1)
    precision = (
        perf.mixed_precision if perf.mixed_precision != "auto" else _auto_precision(backend, accelerator)
    )
    if precision == "off":
        precision = "float32"
    onednn = backend == "tensorflow" and onednn_enabled()
    return Settings(
        backend, device, accelerator, bool(jit), fused, keras_spe, pipeline, precision, perf.threads, onednn
    )


def slow_settings_note(settings: Settings, perf) -> str | None:
    """A line for the start of a run whose `auto` settings are known to be slow, with the
    setting that helps; None otherwise.

    Keras on torch runs every step eagerly (no fused steps there, and torch.compile stays off
    under `auto`: on LeNet-5 it took the first epoch from 22 s to 132 s, so a 10-epoch recipe
    ran longer in all, tools/bench_train.md). Small models then train 3-15x slower than on
    TensorFlow (LeNet-5, the MNIST MLP), which fuses a hundred steps into one compiled call."""
    if settings.backend != "torch" or settings.jit_compile or perf.jit_compile != "auto":
        return None
    return (
        "note: Keras on the torch backend runs each training step eagerly, 3-15x slower than "
        "--backend tensorflow for small models (tools/bench_train.md); for a long "
        "run, --set train.performance.jit_compile=true compiles the step with torch.compile "
        "(its first epoch takes minutes)"
    )


def settle_for_model(settings: Settings, perf, model) -> Settings:
    """The `auto` choices that need the built model, for convolutional models on a CPU:
    - no fused steps: convolutions and pooling ran 2-3x slower inside a fused XLA loop
      (LeNet-5, both backends);
    - XLA off under SMALL_CONV_MACS when TensorFlow runs oneDNN kernels."""
    windowed = any(hasattr(layer, "kernel_size") or hasattr(layer, "pool_size") for layer in model.layers)
    if settings.accelerator or not windowed:
        return settings
    if perf.steps_per_execution == "auto":
        settings = replace(settings, fused_steps=1)
    if (
        perf.jit_compile == "auto"
        and settings.backend == "tensorflow"
        and settings.jit_compile
        and settings.onednn
        and model_macs(model) < SMALL_CONV_MACS
    ):
        settings = replace(settings, jit_compile=False, fused_steps=1)
    return settings


def settle_keras_steps(
    settings: Settings, perf, calls: int, *, distributed: bool, batch_callbacks: bool
) -> Settings:
    """Keras's own steps_per_execution, once the epoch's calls are known.

    Where kbuilder fuses no steps on TensorFlow (no XLA: convolutional models on a CPU), `auto`
    still runs up to AUTO_FUSED_STEPS steps in one call of Keras's graph loop, without XLA:
    LeNet-5's epoch went from 4.2 to 3.6 s (tools/bench_train.md), with the same figures. Not
    under a distribution strategy (see _check_mirrored) nor where a callback counts batches
    (backups every N batches, TensorBoard's batch logs), which would count calls instead.

    Keras runs whole executions: asked for 67 steps an epoch at 4 a call, it runs 68, and the
    extra one is the next epoch's first batch. So the value used is the largest divisor of the
    epoch's calls up to the one wanted (469 batches: 67)."""
    wanted = settings.keras_steps_per_execution
    if (
        perf.steps_per_execution == "auto"
        and settings.backend == "tensorflow"
        and not settings.jit_compile
        and settings.fused_steps == 1
        and not distributed
        and not batch_callbacks
    ):
        wanted = AUTO_FUSED_STEPS
    wanted = max(1, min(wanted, calls))
    chosen = max(d for d in range(1, wanted + 1) if calls % d == 0)
    return replace(settings, keras_steps_per_execution=chosen)


def model_macs(model) -> int:
    """Multiply-accumulates of one sample through `model` (as in `kbuilder build`'s table)."""
    # Deferred: the report package may import Keras, which this module must not (see above).
    from kbuilder.report.figures import macs

    total = 0
    for layer in model.layers:
        try:
            in_shape, out_shape = tuple(layer.input.shape), tuple(layer.output.shape)
        except (AttributeError, ValueError):  # input layers; layers with several inputs have no MACs
            continue
        total += macs(layer, in_shape, out_shape)
    return total


def _check_mirrored(perf) -> None:
    """Keras 3.15's fit under TensorFlow 2.21's MirroredStrategy fails with XLA (a replica's
    variables live on another device) and with steps_per_execution > 1 (an unfed placeholder
    in Keras's multi-step loop); both reproduced with a plain Keras model on two CPU replicas.
    Refuse them up front rather than failing at the first step."""
    if perf.jit_compile is True:
        raise UsageError(
            "train.performance.jit_compile=true does not work with the mirrored strategy "
            "(TensorFlow's XLA cannot reach other replicas' variables); use auto or false"
        )
    if isinstance(perf.steps_per_execution, int) and perf.steps_per_execution > 1:
        raise UsageError(
            f"train.performance.steps_per_execution={perf.steps_per_execution} does not work with the "
            "mirrored strategy in Keras 3.15; use auto or 1 (or the JAX backend's data_parallel)"
        )


def apply_threads(threads: int | None, backend: str) -> None:
    """Limit the math threads (before the backend starts any work)."""
    if threads is None:
        return
    if backend == "tensorflow":
        import tensorflow as tf  # deferred: only on that backend

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(min(threads, 2))
    elif backend == "torch":
        import torch  # deferred: only on that backend

        torch.set_num_threads(threads)
    else:
        os.environ.setdefault("XLA_FLAGS", "")
        if "intra_op_parallelism_threads" not in os.environ["XLA_FLAGS"]:
            os.environ["XLA_FLAGS"] += (
                f" --xla_cpu_multi_thread_eigen={'true' if threads > 1 else 'false'} intra_op_parallelism_threads={threads}"
            )
