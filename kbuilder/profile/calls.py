"""Compiled calls of a Keras model for timing: forward, forward + backward, a training step.

Each backend gets the call a training loop would make, compiled so that Python's overhead
does not dominate a small layer's time: a `tf.function` graph on TensorFlow (no XLA, as
kbuilder trains small convolutional models), `jax.jit` of the model's stateless call on JAX;
on PyTorch Keras runs eagerly, so the eager call is what is timed.

The backward pass is the gradient of a scalar (the mean square of the output, as cheap as a
loss head) with respect to the trainable weights and to those inputs that need a gradient in
the whole model (a layer whose input is the model's input computes no input gradient).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import keras

Call = Callable[[], Any]


@contextlib.contextmanager
def quiet_retracing() -> Iterator[None]:
    """Every layer is a compiled function of its own, and TensorFlow warns ("triggered
    tf.function retracing") after a few: here that is the design, not a mistake to report."""
    logger = logging.getLogger("tensorflow")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _feed(inputs: Sequence[Any]) -> Any:
    return inputs[0] if len(inputs) == 1 else list(inputs)


def _scalar(outputs: Any) -> Any:
    tensors = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    return sum(keras.ops.mean(keras.ops.square(keras.ops.cast(t, "float32"))) for t in tensors)


def forward(model: Any, inputs: Sequence[Any], *, training: bool = False) -> Call:
    """A no-argument call running `model` on `inputs` once (compiled on TF and JAX)."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf  # deferred: only on that backend

        graph = tf.function(lambda xs: model(_feed(xs), training=training))
        return lambda: graph(list(inputs))
    if backend == "jax":
        import jax  # deferred: only on that backend

        def pure(trainable, frozen, xs):
            return model.stateless_call(trainable, frozen, _feed(xs), training=training)[0]

        jitted = jax.jit(pure)
        trainable, frozen = _values(model)
        return lambda: jitted(trainable, frozen, list(inputs))
    return lambda: model(_feed(inputs), training=training)


def gradient(model: Any, inputs: Sequence[Any], needs_grad: Sequence[bool]) -> Call:
    """A no-argument call of forward + backward: gradients of the weights and of the inputs
    flagged in `needs_grad` (no optimizer update)."""
    backend = keras.backend.backend()
    wanted = [i for i, flag in enumerate(needs_grad) if flag]
    if backend == "tensorflow":
        import tensorflow as tf  # deferred: only on that backend

        @tf.function
        def graph(xs):
            with tf.GradientTape() as tape:
                for i in wanted:
                    tape.watch(xs[i])
                loss = _scalar(model(_feed(xs), training=True))
            return tape.gradient(loss, [*model.trainable_variables, *(xs[i] for i in wanted)])

        return lambda: graph(list(inputs))
    if backend == "jax":
        import jax  # deferred: only on that backend

        def loss(trainable, watched, frozen, xs):
            xs = list(xs)
            for i, x in zip(wanted, watched):
                xs[i] = x
            return _scalar(model.stateless_call(trainable, frozen, _feed(xs), training=True)[0])

        jitted = jax.jit(jax.grad(loss, argnums=(0, 1)))
        trainable, frozen = _values(model)
        watched = [inputs[i] for i in wanted]
        return lambda: jitted(trainable, watched, frozen, list(inputs))
    return _torch_gradient(model, inputs, wanted)


def _torch_gradient(model: Any, inputs: Sequence[Any], wanted: list[int]) -> Call:
    def call() -> Any:
        xs = [x.detach().requires_grad_(i in wanted) for i, x in enumerate(inputs)]
        loss = _scalar(model(_feed(xs), training=True))
        loss.backward()
        grads = [v.value.grad for v in model.trainable_variables]
        model.zero_grad()  # Keras's torch layers are torch modules
        return grads

    return call


def training_step(model: Any, inputs: Sequence[Any], optimizer: Any) -> Call:
    """A no-argument call of one training step: forward, backward, the optimizer's update."""
    backend = keras.backend.backend()
    optimizer.build(model.trainable_variables)
    if backend == "tensorflow":
        import tensorflow as tf  # deferred: only on that backend

        @tf.function
        def graph(xs):
            with tf.GradientTape() as tape:
                loss = _scalar(model(_feed(xs), training=True))
            optimizer.apply(tape.gradient(loss, model.trainable_variables), model.trainable_variables)
            return loss

        return lambda: graph(list(inputs))
    if backend == "jax":
        import jax  # deferred: only on that backend

        def loss(trainable, frozen, xs):
            outputs, frozen = model.stateless_call(trainable, frozen, _feed(xs), training=True)
            return _scalar(outputs), frozen

        def step(trainable, frozen, slots, xs):
            (_, frozen), grads = jax.value_and_grad(loss, has_aux=True)(trainable, frozen, xs)
            trainable, slots = optimizer.stateless_apply(slots, grads, trainable)
            return trainable, frozen, slots

        jitted = jax.jit(step)
        trainable, frozen = _values(model)
        state = [trainable, frozen, [v.value for v in optimizer.variables]]

        def call() -> Any:
            state[:] = jitted(*state, list(inputs))
            return state[0]

        return call

    def eager() -> Any:
        import torch  # deferred: only on that backend

        loss = _scalar(model(_feed(inputs), training=True))
        loss.backward()
        variables = model.trainable_variables
        with torch.no_grad():
            optimizer.apply([v.value.grad for v in variables], variables)
        model.zero_grad()
        return loss

    return eager


def _values(model: Any) -> tuple[list[Any], list[Any]]:
    return [v.value for v in model.trainable_variables], [v.value for v in model.non_trainable_variables]


def synchronize(result: Any) -> None:
    """Wait until the device has finished `result` (asynchronous backends return early)."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax  # deferred: only on that backend

        jax.block_until_ready(result)
    elif backend == "tensorflow":
        import tensorflow as tf  # deferred: only on that backend

        if tf.config.list_logical_devices("GPU"):
            tf.test.experimental.sync_devices()
    else:
        import torch  # deferred: only on that backend

        if torch.cuda.is_available():
            torch.cuda.synchronize()


def interleaved_best(
    calls: Sequence[Call], *, warmup: int = 2, repeats: int = 10, budget_s: float = 5.0
) -> list[float]:
    """The fastest time of each call, measured in rounds (each call once per round) so that a
    change in the machine's load falls on all of them alike: `warmup` rounds first (compiling,
    kernel selection), then at least three rounds, at most `repeats`, fewer once `budget_s`
    is spent. The fastest, as `timeit` advises and as the peak is measured: on a shared
    machine the slower rounds measure the other processes' work, not the model's."""
    for _ in range(warmup):
        for call in calls:
            synchronize(call())
    rounds: list[list[float]] = []
    started = time.perf_counter()
    while len(rounds) < repeats and (len(rounds) < 3 or time.perf_counter() - started < budget_s):
        times = []
        for call in calls:
            start = time.perf_counter()
            synchronize(call())
            times.append(time.perf_counter() - start)
        rounds.append(times)
    return [min(column) for column in zip(*rounds)]
