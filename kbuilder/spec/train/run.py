"""Performance and scale-out settings of the `train` section; `auto` values are chosen at run time."""

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from kbuilder.spec.base import StrictModel

_HOST_PORT = re.compile(r"^[A-Za-z0-9_.:\[\]-]+:\d{1,5}$")


class PerformanceSpec(StrictModel):
    """How fast training runs; the defaults were chosen by measurement (see tools/bench_train.py)."""

    jit_compile: bool | Literal["auto"] = Field(
        "auto",
        description="XLA-compile the train step; auto: on with TensorFlow and JAX, except under 'mirrored' and, on a "
        "CPU with TensorFlow's oneDNN kernels, for convolutional models under 2M multiply-accumulates per sample.",
    )
    steps_per_execution: int | Literal["auto"] = Field(
        "auto",
        description="Optimizer steps run in one call (1: Keras's per-step loop): fused under XLA, or in Keras's own "
        "graph loop without XLA (there the largest divisor of the epoch's batches up to this value); auto: up to 100.",
    )
    mixed_precision: Literal["auto", "off", "mixed_float16", "mixed_bfloat16"] = Field(
        "auto", description="Dtype policy; auto: mixed precision on a GPU, float32 otherwise."
    )
    pipeline: Literal["auto", "tf_data", "numpy"] = Field(
        "auto",
        description="Input pipeline; auto: numpy batches unless TensorFlow is needed (augmentation, multi-worker).",
    )
    prefetch: int | Literal["auto"] = Field(
        "auto", description="Batches prepared ahead of the model (tf.data)."
    )
    threads: int | None = Field(
        None, ge=1, le=1024, description="CPU threads for the math (default: all cores)."
    )
    eval_batch_size: int = Field(
        1024, ge=1, le=1 << 20, description="Batch size for validation and test (does not change results)."
    )

    @field_validator("steps_per_execution", "prefetch")
    @classmethod
    def _positive(cls, value):
        if isinstance(value, int) and not 1 <= value <= 1_000_000:  # a spec is untrusted: bounded both ways
            raise ValueError("must be from 1 to 1,000,000, or 'auto'")
        return value


class DistributeSpec(StrictModel):
    """Several devices or machines. Several processes need the JAX backend (Keras's distribution API)."""

    strategy: Literal["auto", "none", "mirrored", "data_parallel"] = Field(
        "auto", description="auto: data parallel over every local accelerator when there is more than one."
    )
    coordinator_address: str | None = Field(
        None, max_length=300, description="host:port of process 0 for multi-process training (JAX)."
    )
    num_processes: int = Field(1, ge=1, le=4096, description="How many processes train together.")
    process_id: int = Field(0, ge=0, le=4095, description="This process's index, 0 to num_processes - 1.")

    @field_validator("coordinator_address")
    @classmethod
    def _host_port(cls, value):
        if value is not None and not _HOST_PORT.match(value):
            raise ValueError(f"expected host:port, got {value!r}")
        return value

    @model_validator(mode="after")
    def _consistent(self):
        if self.process_id >= self.num_processes:
            raise ValueError(f"process_id {self.process_id} must be below num_processes {self.num_processes}")
        if self.num_processes > 1 and self.coordinator_address is None:
            raise ValueError("several processes need coordinator_address (host:port of process 0)")
        if self.num_processes > 1 and self.strategy == "mirrored":
            raise ValueError("'mirrored' is one machine only; several processes use data_parallel (JAX)")
        return self

    @property
    def multi_process(self) -> bool:
        return self.num_processes > 1
