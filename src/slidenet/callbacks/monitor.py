"""Callbacks that watch a logged value or set the learning rate: LearningRateScheduler,
EarlyStopping, ModelCheckpoint and ReduceLROnPlateau."""

from __future__ import annotations

import inspect
import math

import numpy as np

from slidenet.callbacks.base import Callback


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


def _direction(mode, monitor, model=None) -> str:
    """ "max" or "min". In mode "auto": losses are minimised; a compiled Metric object of that
    name says its direction (AUC, precision, ... are maximised); otherwise names with "acc"
    are maximised and the rest minimised."""
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}.")
    if mode != "auto":
        return mode
    if monitor.endswith("loss"):
        return "min"
    from slidenet.metrics import Metric

    key = monitor[4:] if monitor.startswith("val_") else monitor
    for metric in _metric_objects(getattr(model, "metric_fns", None)):
        if not isinstance(metric, Metric) or not metric._direction:
            continue
        if key == metric.name or key.endswith(f"_{metric.name}"):
            return "max" if metric._direction == "up" else "min"
    return "max" if "acc" in monitor else "min"


def _metric_objects(metric_fns):
    for entry in metric_fns or []:
        if isinstance(entry, list):
            yield from _metric_objects(entry)
        else:
            yield entry[1]


def _better(mode, monitor, model=None):
    if _direction(mode, monitor, model) == "max":
        return lambda a, b: a > b
    return lambda a, b: a < b


def _missing(who, monitor, logs):
    return ValueError(
        f"{who}: monitor '{monitor}' is not in the logs ({', '.join(logs or {})}); pass "
        "validation data or monitor 'loss'."
    )


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
        self._better = _better(self._mode, self.monitor, self.model)
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
            raise _missing("EarlyStopping", self.monitor, logs)
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
        self._mode = mode
        self._better = _better(mode, monitor)
        self.best = None

    def on_train_begin(self, logs=None):
        self._better = _better(self._mode, self.monitor, self.model)
        if self.save_best_only and self.best is None:  # a resumed run: the best value so far
            for value in _earlier_values(self.model, self.monitor):
                if self.best is None or self._better(value, self.best):
                    self.best = value

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.save_best_only:
            value = logs.get(self.monitor)
            if value is None:
                raise _missing("ModelCheckpoint", self.monitor, logs)
            if self.best is not None and not self._better(value, self.best):
                return
            self.best = value
        path = self.filepath.format(epoch=epoch + 1, **logs)
        self.model.save(path)
        if self.verbose:
            print(f"\nEpoch {epoch + 1}: saved model to {path}")


class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by ``factor`` when ``monitor`` has not improved by more than
    ``min_delta`` for ``patience`` epochs, then wait ``cooldown`` epochs before counting again;
    never below ``min_lr`` (Keras' rules, step for step).

    Unlike Keras, a ``monitor`` missing from the logs is an error (as for EarlyStopping), not a
    warning. The optimizer's learning rate must be a number (a schedule cannot be set).
    """

    def __init__(
        self,
        monitor="val_loss",
        factor=0.1,
        patience=10,
        verbose=0,
        mode="auto",
        min_delta=1e-4,
        cooldown=0,
        min_lr=0.0,
    ):
        if not (isinstance(factor, int | float) and 0 <= factor < 1):
            raise ValueError(
                f"ReduceLROnPlateau does not support a factor >= 1.0 (or < 0); got {factor!r}."
            )
        _direction(mode, monitor)  # checks the mode
        self.monitor, self.factor, self.patience = monitor, float(factor), int(patience)
        self.verbose, self.mode, self.min_delta = verbose, mode, float(min_delta)
        self.cooldown, self.min_lr = int(cooldown), float(min_lr)
        self._reset()

    def _reset(self, model=None):
        if _direction(self.mode, self.monitor, model) == "min":
            self.monitor_op = lambda a, b: a < b - self.min_delta
            self.best = np.inf
        else:
            self.monitor_op = lambda a, b: a > b + self.min_delta
            self.best = -np.inf
        self.cooldown_counter, self.wait = 0, 0

    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def on_train_begin(self, logs=None):
        self._reset(self.model)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        opt = self.model.optimizer
        logs["learning_rate"] = float(opt.learning_rate)
        current = logs.get(self.monitor)
        if current is None:
            raise _missing("ReduceLROnPlateau", self.monitor, logs)
        if self.in_cooldown():
            self.cooldown_counter -= 1
            self.wait = 0
        if self.monitor_op(current, self.best):
            self.best, self.wait = current, 0
        elif not self.in_cooldown():
            self.wait += 1
            if self.wait >= self.patience:
                old_lr = float(opt.learning_rate)
                if old_lr > np.float32(self.min_lr):
                    new_lr = max(old_lr * self.factor, self.min_lr)
                    opt.learning_rate = new_lr
                    if self.verbose > 0:
                        print(
                            f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to "
                            f"{new_lr}."
                        )
                    self.cooldown_counter, self.wait = self.cooldown, 0


def _earlier_values(model, key) -> list:
    """``key``'s values in the epochs a resumed fit continues (fit(..., initial_epoch=k) on a
    loaded checkpoint), so that callbacks carry on as in a run that was never interrupted."""
    prior = getattr(model, "_prior_history", None) or {}
    return [v for v in prior.get(key, []) if v is not None]
