"""The machine's peak arithmetic rate, the yardstick of "utilization" (metrics.json, `kbuilder profile`).

On a GPU whose name is in PUBLISHED (NVIDIA's data-sheet figures, dense: no sparsity) the
peak is that figure: float32, or the 16-bit tensor-core figure under mixed precision. Anywhere
else it is measured: a float32 matrix product (`keras.ops.matmul`, n = MATMUL_N) on the current
Keras backend, compiled, one warm-up then the best of MATMUL_REPEATS (about half a second on a 2-core
CPU). A measurement is kept per machine in `$XDG_CACHE_HOME/kbuilder/peak.json` (default
`~/.cache/kbuilder/peak.json`), keyed by CPU model, core count, backend and thread count;
the first PEAK_RUNS runs that ask for it each measure again and keep the highest figure (a
busy machine measures low, never high: one measurement under load read 131 GFLOP/s where the
idle machine reads 302), later ones read the cache. Set KBUILDER_REFRESH_PEAK=1 to measure
again after that, or delete the file to start over.

Keras is imported inside the functions that compute: this module is imported by the CLI's
summary code too, which must not start a backend.
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from kbuilder.storage.atomic import WriteFailed, write_json

MATMUL_N = 1536  # 7.2 GFLOP a product: long enough to hide a call's overhead, short enough to repeat
MATMUL_REPEATS = 8  # 0.4 s at 150 GFLOP/s; more rounds give a busy machine more chances at a quiet one
REFRESH_ENV = "KBUILDER_REFRESH_PEAK"
PEAK_RUNS = 5  # measurements, on as many runs, before the cached figure is trusted alone
TERA = 1e12

# NVIDIA data sheets, TFLOP/s without sparsity: (name fragment, float32, 16-bit tensor core, which).
# Checked in order, so a more specific name (H100 PCIe) comes before the general one (H100 = SXM).
PUBLISHED: tuple[tuple[str, float, float, str], ...] = (
    ("H200 NVL", 60.0, 835.0, "bf16"),
    ("H200", 67.0, 989.0, "bf16"),
    ("H100 PCIe", 51.0, 756.0, "bf16"),
    ("H100 NVL", 60.0, 835.0, "bf16"),
    ("H100", 67.0, 989.0, "bf16"),
    ("A100", 19.5, 312.0, "bf16"),
    ("L40S", 91.6, 362.0, "bf16"),
    ("L4", 30.3, 121.0, "bf16"),
    ("A10", 31.2, 125.0, "bf16"),
    ("T4", 8.1, 65.0, "fp16"),
    ("V100 PCIe", 14.0, 112.0, "fp16"),
    ("V100", 15.7, 125.0, "fp16"),
)


@dataclass
class Peak:
    """A peak rate in FLOP/s and where it comes from (one line for people)."""

    flop_per_s: float
    source: str
    precision: str = "float32"

    def as_json(self) -> dict:
        return asdict(self)


def published_peak(device_name: str, mixed_precision: str = "float32") -> Peak | None:
    """The data-sheet peak of a GPU named `device_name` (None when it is not in the table)."""
    for fragment, fp32, half, half_kind in PUBLISHED:
        if fragment.lower() in device_name.lower():
            if mixed_precision.startswith("mixed"):
                return Peak(
                    half * TERA, f"NVIDIA data sheet: {fragment} {half_kind} tensor core, dense", half_kind
                )
            return Peak(fp32 * TERA, f"NVIDIA data sheet: {fragment} float32", "float32")
    return None


def cache_file() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "kbuilder" / "peak.json"


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux, else what platform says)."""
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def machine_key(backend: str, threads: int | None, device: str | None = None) -> str:
    where = device or f"{cpu_model()} | {os.cpu_count()} cores"
    return f"{where} | {backend} | {threads or usable_cores()} threads"


def _read_cache(path: Path) -> dict:
    """The cached measurements; a missing or damaged file is an empty cache (it is remeasured)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def measured_matmul_rate(n: int = MATMUL_N, repeats: int = MATMUL_REPEATS) -> float:
    """FLOP/s of the best of `repeats` float32 n x n products on the current Keras backend,
    compiled as training runs (a `tf.function` on TensorFlow, `jax.jit` on JAX: TensorFlow's
    eager product measured 25% slower than its compiled one on the project's machine)."""
    # Deferred: only a measurement needs the backend (see the module's note).
    import keras
    import numpy as np

    rng = np.random.default_rng(0)
    a = keras.ops.convert_to_tensor(rng.standard_normal((n, n), dtype=np.float32))
    b = keras.ops.convert_to_tensor(rng.standard_normal((n, n), dtype=np.float32))
    product = _compiled(lambda x, y: keras.ops.sum(keras.ops.matmul(x, y)), keras.backend.backend())

    def run() -> None:
        # Reading the sum makes an asynchronous backend finish the product before the clock stops.
        keras.ops.convert_to_numpy(product(a, b))

    run()  # warm-up: compiling, kernel selection, thread pool start
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return 2.0 * n**3 / best


def _compiled(function: Any, backend: str) -> Any:
    if backend == "tensorflow":
        import tensorflow as tf  # deferred: only on that backend

        return tf.function(function)
    if backend == "jax":
        import jax  # deferred: only on that backend

        return jax.jit(function)
    return function  # Keras on PyTorch runs eagerly


def _count(value: Any) -> int:
    """A cache entry's run count (any damage reads as one run: it is measured again)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 1


def measured_peak(
    backend: str, threads: int | None = None, *, device: str | None = None, refresh: bool = False
) -> Peak:
    """The measured float32 matmul rate of this machine's CPU (or of an accelerator not in
    PUBLISHED, named by `device`), cached (see the module's note)."""
    path, key = cache_file(), machine_key(backend, threads, device)
    refresh = refresh or os.environ.get(REFRESH_ENV, "") not in ("", "0")
    cache = _read_cache(path)
    found = cache.get(key)
    entry = found if isinstance(found, dict) and isinstance(found.get("flop_per_s"), (int, float)) else None
    runs = _count(entry.get("runs", 1)) if entry else 0
    if entry and not refresh and runs >= PEAK_RUNS:
        return Peak(float(entry["flop_per_s"]), f"{entry.get('how', 'measured')} (cached in {path})")
    rate = measured_matmul_rate()
    if entry:
        # The higher figure is kept: a busy machine measures low, never high.
        rate = max(rate, float(entry["flop_per_s"]))
    runs += 1
    how = (
        f"measured: compiled float32 matmul n={MATMUL_N}, best of {MATMUL_REPEATS} "
        f"on each of {runs} run{'s' if runs > 1 else ''}, {key}"
    )
    cache[key] = {"flop_per_s": rate, "how": how, "runs": runs, "when": time.strftime("%Y-%m-%dT%H:%M:%S")}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, cache)
    except (OSError, WriteFailed):  # a read-only home only costs the next run half a second
        pass
    return Peak(rate, how)


def machine_peak(
    backend: str,
    device: str,
    *,
    accelerator: bool,
    mixed_precision: str = "float32",
    threads: int | None = None,
    refresh: bool = False,
) -> Peak:
    """The peak for a run on `device` (as kbuilder.train.performance.describe_device words it):
    a known GPU's published figure, else the measured matmul rate."""
    if accelerator:
        known = published_peak(device, mixed_precision)
        if known is not None:
            return known
    return measured_peak(backend, threads, device=device if accelerator else None, refresh=refresh)
