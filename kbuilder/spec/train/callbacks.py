"""Callbacks of the `train` section.

A run always keeps the best model, TensorBoard logs, the CSV history, stops on NaN and
backs up its state so an interrupted run resumes; list one of those here to change its
settings, or to turn it off with `enabled: false`.
"""

from typing import Annotated, Literal

from pydantic import Field

from kbuilder.spec.base import StrictModel

Monitor = Annotated[
    str,
    Field(
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9_]+$",
        description="A logged figure, e.g. val_loss or val_accuracy; auto: val_loss, or loss without validation.",
    ),
]
Mode = Literal["auto", "min", "max"]


class _Callback(StrictModel):
    enabled: bool = Field(True, description="Set false to turn off a callback that runs by default.")


class EarlyStopping(_Callback):
    """Stop when the monitored figure stops improving."""

    type: Literal["early_stopping"] = Field(description="keras.callbacks.EarlyStopping.")
    monitor: Monitor = "auto"
    patience: int = Field(5, ge=0, le=10000, description="Epochs without improvement before stopping.")
    min_delta: float = Field(0.0, ge=0.0, description="Smallest change that counts as an improvement.")
    mode: Mode = Field("auto", description="Whether lower (min) or higher (max) is better.")
    restore_best_weights: bool = Field(True, description="Go back to the best epoch's weights when stopping.")
    start_from_epoch: int = Field(0, ge=0, le=100000, description="Epochs to wait before watching.")


class ReduceLROnPlateau(_Callback):
    """Lower the learning rate when the monitored figure plateaus (not with a schedule)."""

    type: Literal["reduce_lr_on_plateau"] = Field(description="keras.callbacks.ReduceLROnPlateau.")
    monitor: Monitor = "auto"
    factor: float = Field(0.1, gt=0.0, lt=1.0, description="Multiplier of the rate.")
    patience: int = Field(3, ge=0, le=10000, description="Epochs without improvement before lowering.")
    min_delta: float = Field(1e-4, ge=0.0, description="Smallest change that counts as an improvement.")
    cooldown: int = Field(0, ge=0, le=10000, description="Epochs to wait after lowering.")
    min_lr: float = Field(0.0, ge=0.0, description="Lower bound of the rate.")
    mode: Mode = Field("auto", description="Whether lower (min) or higher (max) is better.")


class ModelCheckpoint(_Callback):
    """Keep the best model as best.keras in the run directory (on by default)."""

    type: Literal["model_checkpoint"] = Field(description="keras.callbacks.ModelCheckpoint (best only).")
    monitor: Monitor = "auto"
    mode: Mode = Field("auto", description="Whether lower (min) or higher (max) is better.")


class TensorBoard(_Callback):
    """TensorBoard logs under logs/ in the run directory (on by default)."""

    type: Literal["tensorboard"] = Field(description="keras.callbacks.TensorBoard.")
    histogram_freq: int = Field(0, ge=0, le=10000, description="Epochs between weight histograms (0: none).")
    update_freq: Literal["epoch", "batch"] = Field("epoch", description="How often figures are written.")


class CSVLogger(_Callback):
    """Per-epoch figures in history.csv (on by default)."""

    type: Literal["csv_logger"] = Field(description="keras.callbacks.CSVLogger.")
    separator: Literal[",", ";", "\t"] = Field(",", description="Field separator.")


class TerminateOnNaN(_Callback):
    """Stop as soon as the loss is NaN or infinite (on by default)."""

    type: Literal["terminate_on_nan"] = Field(description="keras.callbacks.TerminateOnNaN.")


class BackupAndRestore(_Callback):
    """Back up the training state under backup/ so a run started again resumes (on by default)."""

    type: Literal["backup_and_restore"] = Field(description="keras.callbacks.BackupAndRestore.")
    save_freq: Literal["epoch"] | Annotated[int, Field(gt=0)] = Field(
        "epoch", description="Back up every epoch, or every N (fused) steps."
    )


Callback = Annotated[
    EarlyStopping
    | ReduceLROnPlateau
    | ModelCheckpoint
    | TensorBoard
    | CSVLogger
    | TerminateOnNaN
    | BackupAndRestore,
    Field(discriminator="type", description="A training callback, by `type`."),
]

DEFAULT_CALLBACKS = (
    "model_checkpoint",
    "tensorboard",
    "csv_logger",
    "terminate_on_nan",
    "backup_and_restore",
)
