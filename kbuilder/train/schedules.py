"""Linear warm-up in front of any Keras learning-rate schedule (saved with the model)."""

from __future__ import annotations

from typing import Any

import keras


@keras.saving.register_keras_serializable(package="kbuilder")
class LinearWarmup(keras.optimizers.schedules.LearningRateSchedule):
    """Rate rises linearly from 0 to `target` over `warmup_steps`, then follows `after`
    (counted from the end of the warm-up)."""

    def __init__(self, after: Any, warmup_steps: int, target: float):
        self.after = after
        self.warmup_steps = int(warmup_steps)
        self.target = float(target)

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        warm = self.target * step / float(max(self.warmup_steps, 1))
        later = self.after(keras.ops.maximum(step - self.warmup_steps, 0.0))
        return keras.ops.where(step < self.warmup_steps, warm, later)

    def get_config(self):
        return {
            "after": keras.saving.serialize_keras_object(self.after),
            "warmup_steps": self.warmup_steps,
            "target": self.target,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["after"] = keras.saving.deserialize_keras_object(config["after"])
        return cls(**config)


def warmup_schedule(after: Any, warmup_steps: int, target: float) -> Any:
    return LinearWarmup(after, warmup_steps, target)
