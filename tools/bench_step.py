"""The floor under a training run: one step on one fixed batch, TensorFlow against PyTorch.

`tools/bench_train.py` times whole runs; this times what no input pipeline, callback or loop
setting can remove: the compiled training step itself, on a batch already in memory. Each
way runs in a fresh process of its own (PyTorch's spinning OpenMP threads would slow
TensorFlow's in the same process), one after the other:

  tensorflow  the spec's model as `kbuilder build` makes it, `tf.function`s of its forward
              pass, forward + backward (a GradientTape), and Keras's own train function
              (forward, backward, the spec's optimizer, the metrics), with kbuilder's `auto`
              XLA choice for the model (`--jit` to force it)
  torch       the hand-written network of tools/bench_train.py: forward, forward + backward,
              and the loop's step (zero_grad, forward, backward, optimizer step)

Each figure is the best of 5 rounds of `--steps` steps. Where kbuilder runs one step a call
(convolutional models on a CPU: no fused steps there, tools/bench_train.md), a run cannot be
faster than its steps: if TensorFlow's forward + backward alone takes more than half of
PyTorch's whole step, no change around the step brings a run to half the PyTorch loop's
time. That is the figure this tool exists to show. (Fused steps, as for the MLP, remove the
per-call cost these single steps include.)

    python tools/bench_step.py                      # lenet5_modern, batch 128 (the recipe's)
    python tools/bench_step.py --precision mixed_bfloat16
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tools"))


def best_ms(step: Callable[[], object], steps: int, sync: Callable[[object], object]) -> float:
    """Milliseconds a step: the best of 5 rounds (after 2 warm-up steps, which compile)."""
    sync(step())
    sync(step())
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(steps):
            result = step()
        sync(result)
        best = min(best, (time.perf_counter() - start) / steps)
    return best * 1e3


def tensorflow_figures(spec: str, batch: int, steps: int, precision: str, jit: str) -> dict:
    from kbuilder.backend import prefer_onednn

    prefer_onednn()  # as `kbuilder train` does, before TensorFlow is imported
    import keras
    import numpy as np
    import tensorflow as tf

    from kbuilder.build import build_model
    from kbuilder.spec import load_spec
    from kbuilder.train import compile as kc
    from kbuilder.train import performance

    keras.config.set_dtype_policy(precision)
    loaded = load_spec(REPO / "specs" / f"{spec}.yaml")
    model = build_model(loaded)
    train = loaded.spec.train
    perf = train.performance
    settings = performance.resolve(
        perf, backend="tensorflow", distribution="none", has_augment=False, multi_process=False
    )
    auto = performance.settle_for_model(settings, perf, model).jit_compile  # what `kbuilder train` picks
    jit_compile = {"on": True, "off": False}.get(jit, auto)
    shape = tuple(next(iter(loaded.spec.inputs.values())).shape)
    rng = np.random.default_rng(0)
    x = tf.constant(rng.standard_normal((batch, *shape), dtype=np.float32))
    y = tf.constant(rng.integers(0, 10, batch))
    loss_fn, logits = kc.make_loss(train.loss, model)

    forward = tf.function(lambda: model(x, training=True), jit_compile=jit_compile)

    @tf.function(jit_compile=jit_compile)
    def forward_backward():
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        return tape.gradient(loss, model.trainable_variables)

    model.compile(
        optimizer=kc.make_optimizer(train.optimizer, steps_per_epoch=1, epochs=1),
        loss=loss_fn,
        metrics=kc.make_metrics(train.metrics, train.loss.name, logits),
        jit_compile=jit_compile,
    )
    model.train_on_batch(x, y)
    train_function = model.make_train_function()
    batches = iter(tf.data.Dataset.from_tensors((x, y)).repeat())
    sync = lambda result: tf.nest.map_structure(lambda t: t.numpy(), result)
    return {
        "way": f"tensorflow {tf.__version__} (jit_compile={jit_compile}, {precision})",
        "forward_ms": best_ms(forward, steps, sync),
        "forward_backward_ms": best_ms(forward_backward, steps, sync),
        "step_ms": best_ms(lambda: train_function(batches), steps, sync),
    }


def torch_figures(spec: str, batch: int, steps: int) -> dict:
    import torch
    from bench_train import _torch_model
    from torch import nn, optim

    from kbuilder.spec import load_spec

    loaded = load_spec(REPO / "specs" / f"{spec}.yaml")
    model, layout = _torch_model(spec)
    shape = tuple(next(iter(loaded.spec.inputs.values())).shape)
    if layout == "nchw":
        shape = (shape[-1], *shape[:-1])
    generator = torch.Generator().manual_seed(0)
    x = torch.randn((batch, *shape), generator=generator)
    y = torch.randint(0, 10, (batch,), generator=generator)
    criterion = nn.CrossEntropyLoss()
    optimizer = optim.Adam(model.parameters(), lr=1e-3)

    def forward_backward():
        loss = criterion(model(x), y)
        loss.backward()
        return loss

    def step():
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
        return loss

    sync = lambda result: float(result.sum())
    with torch.no_grad():
        forward_ms = best_ms(lambda: model(x), steps, sync)
    return {
        "way": f"torch {torch.__version__} ({torch.get_num_threads()} threads)",
        "forward_ms": forward_ms,
        "forward_backward_ms": best_ms(forward_backward, steps, sync),
        "step_ms": best_ms(step, steps, sync),
    }


def _spawn(way: str, args) -> dict:
    command = [sys.executable, __file__, "--worker", way, "--spec", args.spec]
    command += ["--batch-size", str(args.batch_size), "--steps", str(args.steps)]
    command += ["--precision", args.precision, "--jit", args.jit]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"{way} failed:\n{done.stderr[-4000:]}")
    return json.loads(lines[-1][len("RESULT ") :])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", default="lenet5_modern", choices=("lenet5_modern", "mnist_mlp"))
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=150, help="Steps a round (5 rounds, the best counts).")
    parser.add_argument("--precision", default="float32", choices=("float32", "mixed_bfloat16"))
    parser.add_argument("--jit", default="auto", choices=("auto", "on", "off"))
    parser.add_argument("--json", help="Also write the figures to this file.")
    parser.add_argument("--worker", choices=("tensorflow", "torch"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker == "tensorflow":
        figures = tensorflow_figures(args.spec, args.batch_size, args.steps, args.precision, args.jit)
        print("RESULT " + json.dumps(figures))
        return
    if args.worker == "torch":
        print("RESULT " + json.dumps(torch_figures(args.spec, args.batch_size, args.steps)))
        return
    load = os.getloadavg()[0]
    tf_figures, torch_ = _spawn("tensorflow", args), _spawn("torch", args)
    print(f"{args.spec}, batch {args.batch_size}, best of 5 x {args.steps} steps, load {load:.2f}")
    print(f"{'way':58s} {'forward':>9s} {'fwd+bwd':>9s} {'step':>9s}  (ms)")
    for figures in (tf_figures, torch_):
        print(
            f"{figures['way']:58s} {figures['forward_ms']:9.2f} "
            f"{figures['forward_backward_ms']:9.2f} {figures['step_ms']:9.2f}"
        )
    floor = tf_figures["forward_backward_ms"] / torch_["step_ms"]
    print(
        f"TensorFlow's forward + backward alone / PyTorch's whole step = {floor:.2f}; "
        f"whole steps {tf_figures['step_ms'] / torch_['step_ms']:.2f} (a run of unfused steps cannot go below these)"
    )
    if args.json:
        Path(args.json).write_text(json.dumps({"tensorflow": tf_figures, "torch": torch_, "floor": floor}))


if __name__ == "__main__":
    main()
