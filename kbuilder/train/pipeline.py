"""Input pipelines over in-memory arrays, and fused training steps.

Two pipelines feed `model.fit`:
- `numpy`: a keras.utils.PyDataset that gathers shuffled batches with numpy. It needs no
  TensorFlow (the JAX backend on a GPU machine without it) and is the cheapest on a CPU.
- `tf_data`: tf.data (shuffle, batch, parallel augmentation, prefetch); Keras's distribution
  API shards it across processes.

Fusing: with `steps` > 1 every element is a stack of `steps` batches [steps, batch, ...] and
the model's train_step is replaced by a compiled loop over them (lax.scan on JAX, a
tf.while_loop under XLA on TensorFlow). Keras's own steps_per_execution still dispatches one
step at a time on JAX; fusing removes the per-step dispatch, which dominates small models.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from kbuilder.train.data import Arrays


@dataclass(frozen=True)
class BatchPlan:
    """How the training data is cut: batches per epoch and batches fused per call."""

    batch_size: int
    batches: int
    fused: int  # batches per element/call; 1 = not fused

    @property
    def calls(self) -> int:
        return math.ceil(self.batches / self.fused)


def plan_batches(samples: int, batch_size: int, fused: int, *, equal_batches: bool = False) -> BatchPlan:
    """Fused stacks (and lockstep processes) need equal batches, so then the last partial
    batch is dropped (it is a different random few samples every epoch)."""
    batch_size = min(batch_size, samples)
    equal_batches = equal_batches or fused > 1
    batches = samples // batch_size if equal_batches else math.ceil(samples / batch_size)
    return BatchPlan(batch_size, batches, max(1, min(fused, batches)))


def _epoch_order(samples: int, seed: int | None, epoch: int, shuffle: bool) -> np.ndarray:
    if not shuffle:
        return np.arange(samples)
    # Seeded per epoch, so a resumed run sees the same order an uninterrupted one would.
    return np.random.default_rng(None if seed is None else [seed, epoch]).permutation(samples)


def augmenter(steps: list, seed: int | None):
    """A keras.Sequential of the augmentation layers, or None."""
    if not steps:
        return None
    layers = []
    for i, step in enumerate(steps):
        layer_seed = None if seed is None else seed + 1000 + i
        kwargs = step.model_dump(exclude={"type"})
        if step.type == "random_zoom" and kwargs["width_factor"] is None:
            kwargs.pop("width_factor")
        cls = {
            "random_translation": keras.layers.RandomTranslation,
            "random_flip": keras.layers.RandomFlip,
            "random_rotation": keras.layers.RandomRotation,
            "random_zoom": keras.layers.RandomZoom,
            "random_contrast": keras.layers.RandomContrast,
            "random_brightness": keras.layers.RandomBrightness,
        }[step.type]
        layers.append(cls(**kwargs, seed=layer_seed))
    return keras.Sequential(layers, name="augmentation")


@dataclass(frozen=True)
class SampleOrder:
    """How the training samples come: shuffled or not, from which seed, augmented by what,
    starting at which epoch (a resumed run sees the order an uninterrupted one would)."""

    shuffle: bool
    seed: int | None
    start_epoch: int = 0
    augment: Any = None  # a keras.Sequential of augmentation layers, or None


class NumpyBatches(keras.utils.PyDataset):
    """(Fused) training batches gathered with numpy; reshuffled at every epoch end."""

    def __init__(self, arrays: Arrays, plan: BatchPlan, order: SampleOrder):
        super().__init__(workers=1, use_multiprocessing=False, max_queue_size=4)
        self.arrays, self.plan, self.sample_order = arrays, plan, order
        self.epoch = order.start_epoch
        self.order = _epoch_order(len(arrays), order.seed, self.epoch, order.shuffle)

    def __len__(self) -> int:
        return self.plan.calls

    def __getitem__(self, index: int):
        plan, augment = self.plan, self.sample_order.augment
        size = plan.batch_size
        first = index * plan.fused
        last = min(first + plan.fused, plan.batches)
        idx = self.order[first * size : last * size]
        x, y = self.arrays.x[idx], self.arrays.y[idx]
        if augment is not None:
            x = keras.ops.convert_to_numpy(augment(x, training=True))
        if plan.fused > 1:
            x = x.reshape(last - first, size, *x.shape[1:])
            y = y.reshape(last - first, size, *y.shape[1:])
        return x, y

    def on_epoch_end(self) -> None:
        self.epoch += 1
        order = self.sample_order
        self.order = _epoch_order(len(self.arrays), order.seed, self.epoch, order.shuffle)


def tf_dataset(
    arrays: Arrays, plan: BatchPlan, order: SampleOrder, *, prefetch: int | None, shardable: bool = False
):
    """tf.data: shuffled indices -> batched gathers -> augmentation -> (fused stacks) -> prefetch.

    `shardable`: Keras's multi-process sharding reads the batch size from the last batch
    op, which a map after it hides; then samples are augmented one by one before batching.
    """
    # Deferred: only the tf_data pipeline needs TensorFlow; the numpy one runs without it.
    import tensorflow as tf

    if shardable:
        return _shardable_dataset(arrays, plan, order).prefetch(prefetch or tf.data.AUTOTUNE)
    x_all, y_all = tf.constant(arrays.x), tf.constant(arrays.y)
    samples = len(arrays)
    base_seed = order.seed if order.seed is not None else int(np.random.default_rng().integers(2**31 - 1))
    augment = order.augment

    def one_epoch(epoch):
        # A stateless shuffle seeded by (seed, epoch): a resumed run sees the same order
        # as an uninterrupted one. Batches never straddle two epochs.
        indices = tf.range(samples, dtype=tf.int64)
        if order.shuffle:
            indices = tf.random.experimental.stateless_shuffle(
                indices, seed=tf.stack([tf.constant(base_seed, tf.int64), epoch])
            )
        batches = tf.data.Dataset.from_tensor_slices(indices).batch(
            plan.batch_size, drop_remainder=plan.fused > 1
        )
        batches = batches.map(
            gather, num_parallel_calls=tf.data.AUTOTUNE, deterministic=order.seed is not None
        )
        return batches.batch(plan.fused) if plan.fused > 1 else batches

    def gather(idx):
        x = tf.gather(x_all, idx)
        if augment is not None:
            x = augment(x, training=True)
        return x, tf.gather(y_all, idx)

    # Endless, cut into epochs by fit's steps_per_epoch (= plan.calls).
    dataset = tf.data.Dataset.range(order.start_epoch, 2**62).flat_map(one_epoch)
    return dataset.prefetch(prefetch or tf.data.AUTOTUNE)


def _shardable_dataset(arrays: Arrays, plan: BatchPlan, order: SampleOrder):
    """Samples (augmented one by one) batched last, so Keras can shard the batches."""
    import tensorflow as tf  # deferred: see tf_dataset

    dataset = tf.data.Dataset.from_tensor_slices((arrays.x, arrays.y))
    if order.shuffle:
        dataset = dataset.shuffle(len(arrays), seed=order.seed, reshuffle_each_iteration=True)
    augment = order.augment
    if augment is not None:
        dataset = dataset.map(
            lambda x, y: (augment(x, training=True), y), num_parallel_calls=tf.data.AUTOTUNE
        )
    # Every process must run the same number of equal steps, epoch after epoch: whole
    # batches only, and an endless stream cut into epochs by steps_per_epoch.
    return dataset.batch(plan.batch_size, drop_remainder=True).repeat()


def tf_eval_dataset(arrays: Arrays, batch_size: int, *, whole_batches: bool = False):
    import tensorflow as tf  # deferred: see tf_dataset

    dataset = tf.data.Dataset.from_tensor_slices((arrays.x, arrays.y))
    return dataset.batch(batch_size, drop_remainder=whole_batches).prefetch(tf.data.AUTOTUNE)


def lockstep_eval_batch(samples: int, processes: int, batch_size: int) -> tuple[int, int]:
    """(batch, samples used) for evaluation split across processes in lockstep.

    Keras shards a batch across processes, and every process must see the same number of
    equal batches, or the collectives hang. The batch is the multiple of the process count,
    between a quarter of `batch_size` and `batch_size`, that leaves out the fewest samples.
    """
    per_process = max(1, samples // processes)
    cap = max(1, min(batch_size // processes, per_process))
    chosen = min(range(max(1, cap // 4), cap + 1), key=lambda m: (per_process % m, -m))
    batch = chosen * processes
    return batch, (samples // batch) * batch


def install_fused_train_step(model: Any, example: tuple[np.ndarray, np.ndarray]) -> None:
    """Replace model.train_step by a compiled loop over a [steps, batch, ...] stack.

    Keras builds metric and optimizer state from the first element it sees; build them
    here from one plain batch so it never sees the stacked shape.
    """
    model._symbolic_build(data_batch=example)
    single_step = model.train_step
    fuse = _jax_fused_step if keras.backend.backend() == "jax" else _tf_fused_step
    model.train_step = fuse(single_step)


def _jax_fused_step(single_step: Any) -> Any:
    """JAX's stateless train_step(state, batch) scanned over the stack."""
    import jax  # deferred: only on the JAX backend

    def fused_train_step(state, data):
        def body(carry, batch):
            logs, carry = single_step(carry, batch)
            return carry, logs

        state, logs = jax.lax.scan(body, state, data)
        return jax.tree_util.tree_map(lambda v: v[-1], logs), state

    return fused_train_step


def _tf_fused_step(single_step: Any) -> Any:
    """TensorFlow's train_step(batch) in a tf.while_loop over the stack."""
    import tensorflow as tf  # deferred: only on the TensorFlow backend

    def fused_train_step(data):
        count = tf.shape(tf.nest.flatten(data)[0])[0]
        logs = single_step(tf.nest.map_structure(lambda v: v[0], data))

        def body(i, _logs):
            return i + 1, single_step(tf.nest.map_structure(lambda v: v[i], data))

        _, logs = tf.while_loop(lambda i, _logs: i < count, body, (tf.constant(1), logs))
        return logs

    return fused_train_step


def remove_fused_train_step(model: Any) -> None:
    """Back to the class's train_step (saved and exported models must not carry the loop)."""
    if "train_step" in vars(model):
        del model.train_step
        model.train_function = None
