"""Callbacks: hooks that fit calls at the start and end of training, epochs and batches (Keras
API).

fit calls, in order: ``on_train_begin``, then per epoch ``on_epoch_begin``, per batch
``on_train_batch_begin`` / ``on_train_batch_end`` (logs: the running means of the epoch so
far), ``on_epoch_end`` (logs: the epoch's loss and metrics, ``val_*`` with validation data, and
``learning_rate``), and finally ``on_train_end``. A callback stops training by setting
``self.model.stop_training = True``.
"""

from slidenet.callbacks.base import (
    Callback,
    CallbackList,
    History,
    LambdaCallback,
    ProgressBar,
    TerminateOnNaN,
)
from slidenet.callbacks.files import BackupAndRestore, CSVLogger
from slidenet.callbacks.monitor import (
    EarlyStopping,
    LearningRateScheduler,
    ModelCheckpoint,
    ReduceLROnPlateau,
)
from slidenet.callbacks.tensorboard import TensorBoard

__all__ = [
    "BackupAndRestore",
    "CSVLogger",
    "Callback",
    "CallbackList",
    "EarlyStopping",
    "History",
    "LambdaCallback",
    "LearningRateScheduler",
    "ModelCheckpoint",
    "ProgressBar",
    "ReduceLROnPlateau",
    "TensorBoard",
    "TerminateOnNaN",
]
