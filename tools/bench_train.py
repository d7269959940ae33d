"""Training speed: `kbuilder train` against the same model written by hand, in one run.

For each spec, trains the same model on the same data (the spec's recipe: preprocessing,
optimizer, batch size, epochs) three ways, each in a fresh process, one after another:

  kbuilder   `kbuilder train` with its `auto` performance settings, whole epochs
             including its callbacks (best-model checkpoint, backup, TensorBoard, CSV)
  keras      the model written by hand in Keras, `compile` + `fit(x, y)` with default settings
  torch      a hand-written PyTorch loop in the style of notes 003 (DataLoader, zero_grad,
             backward, step), on CUDA when torch sees a GPU

and prints seconds per epoch (mean after the first epoch, and the first epoch, which
includes compiling), training samples per second after the first epoch, test accuracy, and
the ratios kbuilder/torch and keras/kbuilder.

    python tools/bench_train.py                                  # mnist_mlp and lenet5_modern
    python tools/bench_train.py --specs mnist_mlp --epochs 3 --kbuilder-backend jax
    python tools/bench_train.py --json bench.json --data-dir ../shared/datasets
    # a GPU machine with JAX but no TensorFlow:
    KERAS_BACKEND=jax python tools/bench_train.py --kbuilder-backend jax --keras-backend jax
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DEFAULT_DATA = (REPO / "../shared/datasets").resolve()
WAYS = ("torch", "keras", "kbuilder")


def _recipe(spec_name: str, overrides: list[str]):
    from kbuilder.spec import load_spec

    return load_spec(REPO / "specs" / f"{spec_name}.yaml", overrides=overrides)


def _arrays(loaded, data_dir: str):
    """The spec's training and test arrays after its preprocessing (identical for every way)."""
    from kbuilder.train.data import load_splits
    from kbuilder.train.preprocess import preprocess_splits

    train = loaded.spec.train
    shape = tuple(next(iter(loaded.spec.inputs.values())).shape)
    splits = load_splits(
        train.data, spec_dir=loaded.path.parent, data_dir=Path(data_dir), input_shape=shape, seed=train.seed
    )
    splits, _ = preprocess_splits(splits, train.data.preprocess, num_classes=10, loss_name=train.loss.name)
    return splits


def run_kbuilder(loaded, data_dir: str, backend: str, out: Path) -> dict:
    from kbuilder.train import TrainOptions, train

    result = train(loaded, TrainOptions(data_dir=data_dir, out=out, backend=backend, verbose=0, export=False))
    m = result.metrics
    return {
        "epoch_seconds": m["epoch_seconds"],
        "test_accuracy": m.get("test_accuracy"),
        "backend": m["backend"],
        "device": m["device"],
        "samples": m["data"]["train_samples"],
        "settings": {
            k: m["settings"][k]
            for k in ("jit_compile", "fused_steps", "pipeline", "mixed_precision", "onednn")
        },
    }


def _hand_keras_model(name: str):
    import keras

    if name == "mnist_mlp":
        inputs = keras.Input((28, 28))
        x = keras.layers.Flatten()(inputs)
        x = keras.layers.Dense(128, activation="relu")(x)
        x = keras.layers.Dense(64, activation="relu")(x)
        return keras.Model(inputs, keras.layers.Dense(10)(x)), True
    if name == "lenet5_modern":
        inputs = keras.Input((32, 32, 1))
        x = keras.layers.Conv2D(6, 5, activation="tanh")(inputs)
        x = keras.layers.AveragePooling2D(2)(x)
        x = keras.layers.Conv2D(16, 5, activation="tanh")(x)
        x = keras.layers.AveragePooling2D(2)(x)
        x = keras.layers.Conv2D(120, 5, activation="tanh")(x)
        x = keras.layers.Flatten()(x)
        x = keras.layers.Dense(84, activation="tanh")(x)
        return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x)), False
    raise SystemExit(f"no hand-written Keras model for {name}")


def run_keras(loaded, data_dir: str) -> dict:
    import keras

    train = loaded.spec.train
    splits = _arrays(loaded, data_dir)
    keras.utils.set_random_seed(train.seed or 0)
    model, logits = _hand_keras_model(loaded.spec.name)
    opt = train.optimizer
    optimizer = (
        keras.optimizers.SGD(opt.learning_rate, momentum=opt.momentum, nesterov=opt.nesterov)
        if opt.type == "sgd"
        else keras.optimizers.Adam(opt.learning_rate)
    )
    model.compile(
        optimizer, keras.losses.SparseCategoricalCrossentropy(from_logits=logits), metrics=["accuracy"]
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
        batch_size=train.batch_size,
        epochs=train.epochs,
        verbose=0,
        callbacks=[Timer()],
    )
    _, accuracy = model.evaluate(splits.test.x, splits.test.y, verbose=0)
    return {
        "epoch_seconds": seconds,
        "test_accuracy": float(accuracy),
        "backend": keras.backend.backend(),
        "samples": len(splits.train),
        "params": model.count_params(),
    }


def _torch_model(name: str):
    from torch import nn

    if name == "mnist_mlp":

        class SimpleANN(nn.Module):  # notes 003
            def __init__(self):
                super().__init__()
                self.fc1, self.fc2, self.fc3 = nn.Linear(784, 128), nn.Linear(128, 64), nn.Linear(64, 10)

            def forward(self, x):
                import torch

                x = x.view(-1, 28 * 28)
                return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x)))))

        return SimpleANN(), "nhwc"
    return nn.Sequential(
        nn.Conv2d(1, 6, 5),
        nn.Tanh(),
        nn.AvgPool2d(2),
        nn.Conv2d(6, 16, 5),
        nn.Tanh(),
        nn.AvgPool2d(2),
        nn.Conv2d(16, 120, 5),
        nn.Tanh(),
        nn.Flatten(),
        nn.Linear(120, 84),
        nn.Tanh(),
        nn.Linear(84, 10),
    ), "nchw"


def run_torch(loaded, data_dir: str) -> dict:
    import numpy as np
    import torch
    from torch import nn, optim

    train = loaded.spec.train
    torch.manual_seed(train.seed or 0)
    splits = _arrays(loaded, data_dir)
    model, layout = _torch_model(loaded.spec.name)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device)

    def tensors(arrays):
        x = arrays.x if layout == "nhwc" else np.transpose(arrays.x, (0, 3, 1, 2))
        return torch.tensor(np.ascontiguousarray(x)), torch.tensor(arrays.y.astype("int64"))

    trainset = torch.utils.data.TensorDataset(*tensors(splits.train))
    trainloader = torch.utils.data.DataLoader(trainset, batch_size=train.batch_size, shuffle=True)
    criterion = nn.CrossEntropyLoss()  # on logits: the softmax of the Keras model is inside it
    opt = train.optimizer
    optimizer = (
        optim.SGD(model.parameters(), lr=opt.learning_rate, momentum=opt.momentum, nesterov=opt.nesterov)
        if opt.type == "sgd"
        else optim.Adam(model.parameters(), lr=opt.learning_rate)
    )
    seconds = []
    for _ in range(train.epochs):
        start = time.perf_counter()
        for inputs, labels in trainloader:
            inputs, labels = inputs.to(device), labels.to(device)
            optimizer.zero_grad()
            loss = criterion(model(inputs), labels)
            loss.backward()
            optimizer.step()
        seconds.append(time.perf_counter() - start)
    x_test, y_test = tensors(splits.test)
    with torch.no_grad():
        correct = sum(
            int((model(x_test[i : i + 1000].to(device)).argmax(1).cpu() == y_test[i : i + 1000]).sum())
            for i in range(0, len(y_test), 1000)
        )
    return {
        "epoch_seconds": seconds,
        "test_accuracy": correct / len(y_test),
        "backend": f"torch {torch.__version__} ({device})",
        "samples": len(trainset),
        "threads": torch.get_num_threads(),
        "params": sum(p.numel() for p in model.parameters()),
    }


def spec_macs(loaded) -> int:
    """Multiply-accumulates per sample of the spec's model, as `kbuilder build` counts them."""
    from kbuilder.build import build_model
    from kbuilder.train.performance import model_macs

    return model_macs(build_model(loaded))


def matmul_peak_gflops(n: int = 2048, repeats: int = 5) -> float:
    """The machine's float32 rate: the best of a few n x n numpy matrix products (2 n^3 FLOPs)."""
    import numpy as np

    a, b = (np.random.default_rng(i).standard_normal((n, n), dtype=np.float32) for i in (0, 1))
    a @ b  # the first product pays for thread start-up
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def _timed(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def worker(args) -> None:
    base = [f"train.epochs={args.epochs}"] if args.epochs else []
    loaded = _recipe(args.spec, base)
    if args.worker == "macs":
        result = {"macs": spec_macs(loaded)}
    elif args.worker == "kbuilder":
        loaded = _recipe(args.spec, base + list(args.set or []))
        out = Path(args.out) / f"{args.spec}-{args.kbuilder_backend}"
        shutil.rmtree(out, ignore_errors=True)  # a scratch run: the benchmark keeps only its figures
        result = run_kbuilder(loaded, args.data_dir, args.kbuilder_backend, out)
    elif args.worker == "keras":
        result = run_keras(loaded, args.data_dir)
    else:
        result = run_torch(loaded, args.data_dir)
    print("RESULT " + json.dumps(result))


def _spawn(way: str, spec: str, args) -> dict:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    if way == "keras":
        env["KERAS_BACKEND"] = args.keras_backend
    if way == "torch" and args.torch_passive:
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    command = [
        sys.executable,
        __file__,
        "--worker",
        way,
        "--spec",
        spec,
        "--data-dir",
        args.data_dir,
        "--out",
        args.out,
        "--kbuilder-backend",
        args.kbuilder_backend,
    ] + (["--epochs", str(args.epochs)] if args.epochs else [])
    command += [f"--set={item}" for item in (args.set or [])]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO, check=False)
    seconds = time.perf_counter() - start
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"{way} on {spec} failed:\n{done.stderr[-4000:]}")
    # The whole run: process start, imports, data, compiling, every epoch and the evaluation.
    return {**json.loads(lines[-1][len("RESULT ") :]), "whole_seconds": seconds, "load": os.getloadavg()[0]}


def _steady(seconds: list[float]) -> float:
    return statistics.mean(seconds[1:]) if len(seconds) > 1 else seconds[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--specs", nargs="+", default=["mnist_mlp", "lenet5_modern"])
    parser.add_argument("--ways", nargs="+", default=list(WAYS), choices=WAYS)
    parser.add_argument("--epochs", type=int, default=None, help="Override the recipe's epochs.")
    parser.add_argument("--data-dir", default=os.environ.get("KBUILDER_DATA_DIR", str(DEFAULT_DATA)))
    parser.add_argument("--kbuilder-backend", default="tensorflow", choices=("tensorflow", "jax", "torch"))
    parser.add_argument(
        "--keras-backend", default="tensorflow", help="Backend of the hand-written Keras model."
    )
    parser.add_argument("--out", default=str(Path(os.environ.get("TMPDIR", "/tmp")) / "kbuilder-bench"))
    parser.add_argument("--json", default=None, help="Also write the figures to this file.")
    parser.add_argument(
        "--set", action="append", help="A spec override for the kbuilder way only (repeatable)."
    )
    parser.add_argument(
        "--torch-passive",
        action="store_true",
        help="Run the torch loop with OMP_WAIT_POLICY=PASSIVE: on a loaded machine PyTorch's spinning "
        "OpenMP threads slow it 10x and more (tools/bench_train.md).",
    )
    parser.add_argument("--worker", default=None, choices=(*WAYS, "macs"), help=argparse.SUPPRESS)
    parser.add_argument("--spec", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    peak = matmul_peak_gflops()
    report = {"load_before": os.getloadavg(), "cpus": os.cpu_count(), "peak_gflops": peak, "results": {}}
    print(
        f"peak: float32 matrix product (numpy, n=2048, best of 5) {peak:.0f} GFLOP/s, load {os.getloadavg()[0]:.2f}"
    )
    for spec in args.specs:
        macs = _spawn("macs", spec, args)["macs"]
        results = {way: _spawn(way, spec, args) for way in args.ways}
        report["results"][spec] = {"macs": macs, **results}
        print(
            f"\n{spec} ({len(next(iter(results.values()))['epoch_seconds'])} epochs, {macs:,} MACs per sample, "
            f"load {os.getloadavg()[0]:.2f}):"
        )
        for way, r in results.items():
            acc = r.get("test_accuracy")
            steady = _steady(r["epoch_seconds"])
            # Training arithmetic: forward, input gradient and weight gradient, 2 FLOPs per MAC.
            r["fraction_of_peak"] = 6 * macs * r["samples"] / steady / 1e9 / peak
            print(
                f"  {way:9s} {steady:7.2f} s/epoch (first {r['epoch_seconds'][0]:6.2f} s, whole run {r['whole_seconds']:6.1f} s)  "
                f"{r['samples'] / steady:9,.0f} samples/s  {100 * r['fraction_of_peak']:4.1f}% of peak  "
                f"test accuracy {acc:.4f}  load {r['load']:.2f}  [{r['backend']}]"
                if acc is not None
                else f"  {way}: {r}"
            )
        if {"kbuilder", "torch"} <= results.keys():
            print(
                f"  kbuilder/torch = {_steady(results['kbuilder']['epoch_seconds']) / _steady(results['torch']['epoch_seconds']):.2f} per epoch, "
                f"{results['kbuilder']['whole_seconds'] / results['torch']['whole_seconds']:.2f} whole run (goal <= 0.5)"
            )
        if {"kbuilder", "keras"} <= results.keys():
            print(
                f"  keras/kbuilder = {_steady(results['keras']['epoch_seconds']) / _steady(results['kbuilder']['epoch_seconds']):.2f} (goal >= 3 on mnist_mlp)"
            )
    report["load_after"] = os.getloadavg()
    print(
        f"\nload average before {report['load_before'][0]:.2f}, after {report['load_after'][0]:.2f} on {report['cpus']} CPUs"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
