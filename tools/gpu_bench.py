"""GPU training benchmark: kbuilder's models against the same networks written by hand in Keras.

For each model (resnet50, lenet5_modern, fashion_cnn by default) it trains, on synthetic data
held in memory as numpy arrays (no tf.data, so TensorFlow need not be installed), in mixed
precision, two ways, each in a fresh process on the same backend:

  kbuilder   `kbuilder.train` on the spec in specs/, with its `auto` performance settings
             (the synthetic arrays replace the spec's data source; no preprocessing, no
             validation, no callbacks beyond kbuilder's own)
  keras      the same network written by hand in Keras (keras.applications.ResNet50 for
             resnet50), `compile` + `fit(x, y)` with the same optimizer and precision

and reports images per second and step time (after the first epoch, which compiles), the
training arithmetic reached (6 x the multiply-accumulates per image, as `kbuilder build`
counts them) and its fraction of the GPU's published peak for that precision (PEAKS below).

    KERAS_BACKEND=jax python tools/gpu_bench.py                 # on the GPU machine
    KERAS_BACKEND=jax python tools/gpu_bench.py --models resnet50 --batch-size 256
    python tools/gpu_bench.py --dry-run                          # here: everything but the GPU

`--dry-run` runs on the CPU at tiny sizes (resnet50 at 32x32, batch 2, two epochs of two
steps) and checks the imports, the spec builds, both ways' training, the peak table and the
report; its figures mean nothing. Compiling resnet50's step with XLA takes most of its time,
but `--jit-compile false` is slower still on the CPU (JAX then runs and compiles each
operation on its own: resnet50's first epoch took 132 s against 41 s compiled, on the loaded
2-core machine), so the dry run compiles as a GPU run does. How to run it on a GPU machine:
tools/gpu_bench.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
MODELS = ("resnet50", "lenet5_modern", "fashion_cnn")
WAYS = ("kbuilder", "keras")
CLASSES = {"resnet50": 1000, "lenet5_modern": 10, "fashion_cnn": 10}

# Published dense peaks in TFLOP/s (NVIDIA data sheets; tensor cores for bf16/fp16, without
# the 2:4 sparsity figures; float32 is the CUDA-core rate, not TF32). Matched against the
# device name in this order, so the more specific names come first.
PEAKS: list[tuple[str, str, dict[str, float]]] = [
    (r"H200", "H200", {"float32": 67.0, "bfloat16": 989.0, "float16": 989.0}),
    (r"H100.*(PCIe|PCIE)", "H100 PCIe", {"float32": 51.0, "bfloat16": 756.0, "float16": 756.0}),
    (r"H100", "H100 SXM", {"float32": 67.0, "bfloat16": 989.0, "float16": 989.0}),
    (r"A100", "A100", {"float32": 19.5, "bfloat16": 312.0, "float16": 312.0}),
    (r"\bL4\b", "L4", {"float32": 30.3, "bfloat16": 121.0, "float16": 121.0}),
    (r"\bT4\b", "T4", {"float32": 8.1, "float16": 65.0}),  # Turing: no bfloat16 tensor cores
    (r"V100.*(PCIe|PCIE)", "V100 PCIe", {"float32": 14.0, "float16": 112.0}),
    (r"V100", "V100 SXM2", {"float32": 15.7, "float16": 125.0}),
]


def lookup_peak(device_name: str) -> tuple[str, dict[str, float]] | None:
    """(table entry, peaks by precision) for a device name such as 'NVIDIA H100 80GB HBM3'."""
    for pattern, entry, peaks in PEAKS:
        if re.search(pattern, device_name):
            return entry, peaks
    return None


def math_dtype(precision: str) -> str:
    """The dtype the arithmetic runs in under a Keras precision policy."""
    return {"mixed_bfloat16": "bfloat16", "mixed_float16": "float16"}.get(precision, "float32")


def _train_section(epochs: int, batch: int) -> dict:
    """The recipe used for both ways: Adam, sparse cross-entropy, no validation or augmentation."""
    return {
        "data": {
            "source": {"type": "keras", "name": "mnist"},  # never read: the bench passes its arrays
            "validation": {"type": "none"},
            "evaluate_test": False,
        },
        "optimizer": {"type": "adam", "learning_rate": 0.001},
        "loss": "sparse_categorical_crossentropy",
        "metrics": ["accuracy"],
        "epochs": epochs,
        "batch_size": batch,
        "seed": 0,
    }


def load_bench_spec(name: str, args):
    """specs/NAME.yaml with the bench's recipe (and, in a dry run, a small input for resnet50)."""
    import yaml

    from kbuilder.spec import loads_spec

    path = REPO / "specs" / f"{name}.yaml"
    data = yaml.safe_load(path.read_text())
    data["train"] = _train_section(args.epochs, args.batch_size)
    data.pop("expect", None)  # the dry run's smaller input changes the shapes it states
    if args.dry_run and name == "resnet50":
        next(iter(data["inputs"].values()))["shape"] = [32, 32, 3]
    performance = {}
    if args.precision != "auto":
        # The spec calls float32 'off' (a policy name for Keras, a switch for kbuilder).
        performance["mixed_precision"] = "off" if args.precision == "float32" else args.precision
    if args.jit_compile != "auto":
        performance["jit_compile"] = args.jit_compile == "true"
    if performance:
        data["train"]["performance"] = performance
    return loads_spec(yaml.safe_dump(data, sort_keys=False), file=str(path))


def synthetic_splits(shape: tuple, classes: int, samples: int):
    """Random images and labels, as numpy arrays in memory."""
    import numpy as np

    from kbuilder.train.data import Arrays, Splits

    rng = np.random.default_rng(0)
    x = rng.standard_normal((samples, *shape), dtype=np.float32)
    y = rng.integers(0, classes, size=samples).astype("int64")
    return Splits(Arrays(x, y), None, None, f"synthetic {samples} x {shape}")


def run_kbuilder(name: str, args) -> dict:
    from kbuilder.train import TrainOptions, train

    loaded = load_bench_spec(name, args)
    shape = tuple(next(iter(loaded.spec.inputs.values())).shape)
    splits = synthetic_splits(shape, CLASSES[name], args.steps * args.batch_size)
    with tempfile.TemporaryDirectory(prefix="gpu-bench-") as out:
        result = train(
            loaded,
            TrainOptions(
                out=out,
                backend=args.backend,
                verbose=0,
                export=False,
                load_splits=lambda *_, **__: splits,
            ),
        )
    m = result.metrics
    return {
        "epoch_seconds": m["epoch_seconds"],
        "device": m["device"],
        "precision": m["settings"]["mixed_precision"],
        "settings": {k: m["settings"][k] for k in ("jit_compile", "fused_steps", "pipeline")},
    }


def hand_model(name: str, shape: tuple):
    """The network written by hand in Keras."""
    import keras

    if name == "resnet50":
        return keras.applications.ResNet50(weights=None, input_shape=shape, classes=CLASSES[name])
    inputs = keras.Input(shape)
    if name == "lenet5_modern":
        x = keras.layers.Conv2D(6, 5, activation="tanh")(inputs)
        x = keras.layers.AveragePooling2D(2)(x)
        x = keras.layers.Conv2D(16, 5, activation="tanh")(x)
        x = keras.layers.AveragePooling2D(2)(x)
        x = keras.layers.Conv2D(120, 5, activation="tanh")(x)
        x = keras.layers.Flatten()(x)
        x = keras.layers.Dense(84, activation="tanh")(x)
    else:  # fashion_cnn
        x = keras.layers.Conv2D(64, 7, padding="same", activation="relu")(inputs)
        x = keras.layers.MaxPooling2D(2)(x)
        for filters in (128, 256):
            x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
            x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
            x = keras.layers.MaxPooling2D(2)(x)
        x = keras.layers.Flatten()(x)
        for _ in range(2):
            x = keras.layers.Dense(64, activation="relu")(x)
            x = keras.layers.Dropout(0.5)(x)
    outputs = keras.layers.Dense(CLASSES[name], activation="softmax", dtype="float32")(x)
    return keras.Model(inputs, outputs)


def run_keras(name: str, args, precision: str) -> dict:
    import keras

    from kbuilder.train.performance import describe_device

    loaded = load_bench_spec(name, args)
    shape = tuple(next(iter(loaded.spec.inputs.values())).shape)
    splits = synthetic_splits(shape, CLASSES[name], args.steps * args.batch_size)
    keras.mixed_precision.set_global_policy(precision)
    keras.utils.set_random_seed(0)
    model = hand_model(name, shape)
    jit = {"true": True, "false": False}.get(args.jit_compile, "auto")
    model.compile(
        keras.optimizers.Adam(0.001), "sparse_categorical_crossentropy", metrics=["accuracy"], jit_compile=jit
    )
    seconds: list[float] = []

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            seconds.append(time.perf_counter() - self.start)

    model.fit(
        splits.train.x,
        splits.train.y,
        batch_size=args.batch_size,
        epochs=args.epochs,
        verbose=0,
        callbacks=[Timer()],
    )
    return {
        "epoch_seconds": seconds,
        "device": describe_device(keras.backend.backend())[0],
        "precision": precision,
    }


def model_flops(name: str, args) -> tuple[int, float]:
    """(parameters, training FLOPs per image): forward, input gradient and weight gradient are
    about one forward's multiply-accumulates each, two FLOPs apiece."""
    from kbuilder.build import build_model
    from kbuilder.train.performance import model_macs

    model = build_model(load_bench_spec(name, args))
    return model.count_params(), 6.0 * model_macs(model)


def device_name() -> str:
    """The accelerator's name as the backend reports it ('cpu' on a CPU)."""
    import keras

    if keras.backend.backend() == "jax":
        import jax

        device = jax.devices()[0]
        return "cpu" if device.platform == "cpu" else str(device.device_kind)
    if keras.backend.backend() == "torch":
        import torch

        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return "cpu"
    return str(tf.config.experimental.get_device_details(gpus[0]).get("device_name", gpus[0].name))


def worker(args) -> None:
    if args.worker == "kbuilder":
        result = run_kbuilder(args.model, args)
    else:
        result = run_keras(args.model, args, args.worker_precision)
    params, flops = model_flops(args.model, args)
    result.update(params=params, flops_per_image=flops, device_name=device_name())
    print("RESULT " + json.dumps(result))


def _spawn(kind: str, model: str, args, precision: str = "") -> dict:
    env = dict(os.environ)
    env.setdefault("KERAS_BACKEND", args.backend)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if args.dry_run:
        env["JAX_PLATFORMS"] = "cpu"
        env["CUDA_VISIBLE_DEVICES"] = ""
    command = [sys.executable, __file__, "--worker", kind, "--model", model]
    command += ["--backend", args.backend, "--batch-size", str(args.batch_size)]
    command += ["--steps", str(args.steps), "--epochs", str(args.epochs), "--precision", args.precision]
    command += ["--jit-compile", args.jit_compile]
    command += (["--dry-run"] if args.dry_run else []) + (
        ["--worker-precision", precision] if precision else []
    )
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise SystemExit(
            f"gpu_bench: {kind} on {model} failed (exit {done.returncode}):\n{done.stderr[-4000:]}"
        )
    return json.loads(lines[-1][len("RESULT ") :])


def summarize(model: str, way: str, run: dict, args) -> dict:
    """Images per second, step time and utilization after the first (compiling) epoch."""
    seconds = run["epoch_seconds"]
    steady = statistics.mean(seconds[1:]) if len(seconds) > 1 else seconds[0]
    images = args.steps * args.batch_size
    rate = images / steady
    achieved = rate * run["flops_per_image"] / 1e12
    found = lookup_peak(run["device_name"])
    dtype = math_dtype(run["precision"])
    peak = found[1].get(dtype) if found else None
    return {
        "model": model,
        "way": way,
        "precision": run["precision"],
        "images_per_second": rate,
        "step_ms": 1000 * steady / args.steps,
        "first_epoch_s": seconds[0],
        "tflops": achieved,
        "peak_tflops": peak,
        "peak_entry": found[0] if found else None,
        "utilization": achieved / peak if peak else None,
        "device": run["device"],
    }


def format_table(rows: list[dict]) -> str:
    head = "| model | way | precision | images/s | step (ms) | first epoch (s) | TFLOP/s | of peak |"
    lines = [head, "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        share = (
            f"{100 * r['utilization']:.1f}% of {r['peak_tflops']:g}" if r["utilization"] is not None else "-"
        )
        lines.append(
            f"| {r['model']} | {r['way']} | {r['precision']} | {r['images_per_second']:,.0f} | "
            f"{r['step_ms']:.1f} | {r['first_epoch_s']:.1f} | {r['tflops']:.3f} | {share} |"
        )
    return "\n".join(lines)


def _check_peak_table() -> None:
    """The names the backends report for the devices in PEAKS find their entry (dry run)."""
    expected = {
        "NVIDIA H100 80GB HBM3": "H100 SXM",
        "NVIDIA H100 PCIe": "H100 PCIe",
        "NVIDIA H200": "H200",
        "NVIDIA A100-SXM4-80GB": "A100",
        "NVIDIA L4": "L4",
        "NVIDIA L40S": None,
        "Tesla T4": "T4",
        "Tesla V100-SXM2-16GB": "V100 SXM2",
        "Tesla V100-PCIE-32GB": "V100 PCIe",
        "cpu": None,
    }
    for name, entry in expected.items():
        found = lookup_peak(name)
        if (found[0] if found else None) != entry:
            raise SystemExit(f"gpu_bench: the peak table maps {name!r} to {found}, expected {entry}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--ways", nargs="+", default=list(WAYS), choices=WAYS)
    parser.add_argument("--backend", default=os.environ.get("KERAS_BACKEND", "jax"))
    parser.add_argument("--batch-size", type=int, default=None, help="Default 128 (2 in a dry run).")
    parser.add_argument("--steps", type=int, default=None, help="Steps per epoch; default 100 (2 dry).")
    parser.add_argument("--epochs", type=int, default=None, help="Default 3 (2 dry); the first compiles.")
    parser.add_argument(
        "--precision",
        default="auto",
        choices=("auto", "mixed_bfloat16", "mixed_float16", "float32"),
        help="auto: kbuilder's choice for the device (bfloat16 from compute capability 8).",
    )
    parser.add_argument(
        "--jit-compile",
        default="auto",
        choices=("auto", "true", "false"),
        help="XLA-compile the training step (both ways); auto: kbuilder's choice and Keras's.",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="Tiny sizes on the CPU: checks all but the GPU."
    )
    parser.add_argument("--json", default=None, help="Also write the rows to this file.")
    parser.add_argument("--worker", default=None, choices=WAYS, help=argparse.SUPPRESS)
    parser.add_argument("--model", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--worker-precision", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.batch_size = args.batch_size or (2 if args.dry_run else 128)
    args.steps = args.steps or (2 if args.dry_run else 100)
    args.epochs = args.epochs or (2 if args.dry_run else 3)
    if args.dry_run and args.precision == "auto":
        args.precision = "mixed_bfloat16"  # a CPU's auto is float32: exercise the mixed path
    if args.worker:
        worker(args)
        return
    if args.dry_run:
        _check_peak_table()
    rows = []
    for model in args.models:
        runs = {}
        if "kbuilder" in args.ways:
            runs["kbuilder"] = _spawn("kbuilder", model, args)
        precision = runs["kbuilder"]["precision"] if runs else args.precision
        if "keras" in args.ways:
            # The same precision as kbuilder resolved (auto differs by device).
            if precision == "auto":
                raise SystemExit(
                    "gpu_bench: --ways keras alone needs --precision (auto is kbuilder's choice)"
                )
            runs["keras"] = _spawn("keras", model, args, precision)
        for way, run in runs.items():
            rows.append(summarize(model, way, run, args))
        info = next(iter(runs.values()))
        print(
            f"{model}: {info['params']:,} parameters, {info['flops_per_image'] / 1e9:.3f} GFLOP per training image"
        )
    device = rows[0]["device"] if rows else "-"
    print(
        f"\n{device} ({args.backend}), batch {args.batch_size}, {args.steps} steps per epoch, "
        f"{args.epochs} epochs, jit_compile {args.jit_compile}"
    )
    print(format_table(rows))
    if args.dry_run:
        print("\ndry run: tiny sizes on the CPU; the figures above say nothing about a GPU")
    if args.json:
        Path(args.json).write_text(json.dumps({"backend": args.backend, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
