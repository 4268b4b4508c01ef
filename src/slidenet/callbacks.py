"""Callbacks: hooks that fit calls at the start and end of training, epochs and batches (Keras
API).
"""

from __future__ import annotations

import inspect
import math
import time

import numpy as np


class Callback:
    """Base class; override any of the hooks. ``self.model`` is set by fit."""

    def set_model(self, model):
        self.model = model

    def on_train_begin(self, logs=None): ...
    def on_train_end(self, logs=None): ...
    def on_epoch_begin(self, epoch, logs=None): ...
    def on_epoch_end(self, epoch, logs=None): ...
    def on_train_batch_begin(self, batch, logs=None): ...
    def on_train_batch_end(self, batch, logs=None): ...


class CallbackList:
    """Calls a hook on every callback in order."""

    def __init__(self, callbacks, model):
        self.callbacks = list(callbacks)
        for cb in self.callbacks:
            cb.set_model(model)

    def __getattr__(self, hook):
        def call(*args, **kwargs):
            for cb in self.callbacks:
                getattr(cb, hook)(*args, **kwargs)

        return call


class History(Callback):
    """Records every epoch's logs: ``history.history["loss"]`` is a list, one value per epoch."""

    def __init__(self):
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)


class LearningRateScheduler(Callback):
    """Set the learning rate at the start of each epoch from ``schedule(epoch)`` or
    ``schedule(epoch, lr)``, e.g. ``LearningRateScheduler(lambda epoch: 0.01 * 0.6**epoch)``."""

    def __init__(self, schedule, verbose=0):
        if not callable(schedule):
            raise TypeError("LearningRateScheduler: schedule must be a function of the epoch.")
        self.schedule = schedule
        self.verbose = verbose
        try:
            self._two_args = len(inspect.signature(schedule).parameters) >= 2
        except (TypeError, ValueError):
            self._two_args = False

    def on_epoch_begin(self, epoch, logs=None):
        opt = self.model.optimizer
        lr = self.schedule(epoch, opt.learning_rate) if self._two_args else self.schedule(epoch)
        lr = float(lr)
        if not math.isfinite(lr) or lr <= 0:
            raise ValueError(
                f"LearningRateScheduler: schedule({epoch}) returned {lr!r}; it must be > 0."
            )
        opt.learning_rate = lr
        if self.verbose:
            print(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to {lr:.6g}.")


def _better(mode, monitor):
    if mode == "auto":
        mode = "max" if "acc" in monitor else "min"
    return (lambda a, b: a > b) if mode == "max" else (lambda a, b: a < b)


class EarlyStopping(Callback):
    """Stop training when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs;
    with restore_best_weights=True the best epoch's weights are put back at the end.

    A fit that resumes a loaded checkpoint (``initial_epoch=model.epoch``) first replays the
    earlier epochs' values, so it stops where an uninterrupted run would; the weights of a best
    epoch before the checkpoint are not in it, though, and are not restored.
    """

    def __init__(
        self, monitor="val_loss", min_delta=0.0, patience=0, mode="auto", restore_best_weights=False
    ):
        self.monitor, self.patience = monitor, int(patience)
        self.min_delta = abs(float(min_delta))
        self.restore_best_weights = restore_best_weights
        self._mode = mode
        self._better = _better(mode, monitor)

    def on_train_begin(self, logs=None):
        self.wait, self.stopped_epoch, self.best_weights = 0, 0, None
        self.best = -np.inf if self._better(1, 0) else np.inf
        for value in _earlier_values(self.model, self.monitor):  # a resumed run: replay them
            self._improved(value)

    def _improved(self, value) -> bool:
        sign = 1 if self._better(1, 0) else -1
        if self._better(value - sign * self.min_delta, self.best):
            self.best, self.wait = value, 0
            return True
        self.wait += 1
        return False

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None:
            raise ValueError(
                f"EarlyStopping: monitor '{self.monitor}' is not in the logs "
                f"({', '.join(logs or {})}); pass validation data or monitor 'loss'."
            )
        if self._improved(value):
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            return
        if self.wait >= self.patience:  # as Keras: stop after `patience` epochs without improvement
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.restore_best_weights and self.best_weights is not None:  # stopped or not (Keras 3)
            self.model.set_weights(self.best_weights)


class ModelCheckpoint(Callback):
    """Save the model after every epoch (``filepath`` may contain ``{epoch:02d}`` and log keys such
    as ``{val_loss:.3f}``); with save_best_only=True only when ``monitor`` improved (on a resumed
    fit, improved on the best of the epochs before the checkpoint too)."""

    def __init__(self, filepath, monitor="val_loss", save_best_only=False, mode="auto", verbose=0):
        self.filepath, self.monitor = str(filepath), monitor
        self.save_best_only, self.verbose = save_best_only, verbose
        self._better = _better(mode, monitor)
        self.best = None

    def on_train_begin(self, logs=None):
        if self.save_best_only and self.best is None:  # a resumed run: the best value so far
            for value in _earlier_values(self.model, self.monitor):
                if self.best is None or self._better(value, self.best):
                    self.best = value

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.save_best_only:
            value = logs.get(self.monitor)
            if value is None:
                raise ValueError(
                    f"ModelCheckpoint: monitor '{self.monitor}' is not in the logs "
                    f"({', '.join(logs)}); pass validation data or monitor 'loss'."
                )
            if self.best is not None and not self._better(value, self.best):
                return
            self.best = value
        path = self.filepath.format(epoch=epoch + 1, **logs)
        self.model.save(path)
        if self.verbose:
            print(f"\nEpoch {epoch + 1}: saved model to {path}")


def _earlier_values(model, key) -> list:
    """``key``'s values in the epochs a resumed fit continues (fit(..., initial_epoch=k) on a
    loaded checkpoint), so that callbacks carry on as in a run that was never interrupted."""
    prior = getattr(model, "_prior_history", None) or {}
    return [v for v in prior.get(key, []) if v is not None]


class ProgressBar(Callback):
    """fit's progress display: a tqdm bar per epoch (verbose=1) or one line per epoch
    (verbose=2).
    """

    def __init__(self, verbose, epochs, batch_size, samples):
        self.verbose, self.epochs = verbose, epochs
        self.batch_size, self.samples = batch_size, samples

    def on_epoch_begin(self, epoch, logs=None):
        self._t0, self._seen = time.perf_counter(), 0
        if self.verbose == 1:
            from tqdm.auto import tqdm

            self._bar = tqdm(
                total=self.samples,
                desc=f"Epoch {epoch + 1}/{self.epochs}",
                unit="img",
                leave=True,
                dynamic_ncols=True,
            )

    def on_train_batch_end(self, batch, logs=None):
        if self.verbose != 1:
            return
        self._bar.update(min(self.batch_size, self.samples - self._bar.n))
        self._bar.set_postfix_str(_fmt(logs), refresh=False)

    def on_epoch_end(self, epoch, logs=None):
        elapsed = time.perf_counter() - self._t0
        rate = self.samples / elapsed if elapsed > 0 else float("inf")
        text = _fmt({k: v for k, v in (logs or {}).items() if k != "learning_rate"})
        if self.verbose == 1:
            self._bar.set_postfix_str(text, refresh=True)
            self._bar.close()
        elif self.verbose == 2:
            print(
                f"Epoch {epoch + 1}/{self.epochs} - {elapsed:.1f}s - {rate:.0f} img/s - {text}",
                flush=True,
            )

    def close(self):
        """Close an open bar (fit calls this when interrupted)."""
        bar = getattr(self, "_bar", None)
        if bar is not None:
            bar.close()


def _fmt(logs):
    return " - ".join(f"{k}: {v:.4f}" for k, v in logs.items() if isinstance(v, float | int))
