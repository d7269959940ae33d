"""Training: `kbuilder train` and `kbuilder.train.train(loaded, TrainOptions(...))`.

Importing this package is cheap; Keras and the backends are imported when a run starts.
"""

from __future__ import annotations

from typing import Any


def train(loaded: Any, options: Any = None) -> Any:
    """Train a loaded spec; returns a TrainResult (run_dir, metrics, history)."""
    from kbuilder.train.runner import train as run_training

    return run_training(loaded, options)


def __getattr__(name: str) -> Any:
    if name in ("TrainOptions", "TrainResult"):
        from kbuilder.train import runner

        return getattr(runner, name)
    raise AttributeError(name)


__all__ = ["TrainOptions", "TrainResult", "train"]
