"""The Callback base class, the list fit calls, History, the progress display, and the small
callbacks LambdaCallback and TerminateOnNaN."""

from __future__ import annotations

import math
import time


class Callback:
    """Base class; override any of the hooks. ``self.model`` is set by fit.

    As in Keras, ``on_train_batch_begin`` / ``on_train_batch_end`` call ``on_batch_begin`` /
    ``on_batch_end`` unless overridden, so a callback may define either.
    """

    model = None
    params: dict = {}

    def set_model(self, model):
        self.model = model

    def set_params(self, params):
        self.params = params

    def on_train_begin(self, logs=None): ...
    def on_train_end(self, logs=None): ...
    def on_epoch_begin(self, epoch, logs=None): ...
    def on_epoch_end(self, epoch, logs=None): ...
    def on_batch_begin(self, batch, logs=None): ...
    def on_batch_end(self, batch, logs=None): ...
    # Keras' evaluate / predict hooks, for callbacks written for Keras (fit does not call them)
    def on_test_begin(self, logs=None): ...
    def on_test_end(self, logs=None): ...
    def on_test_batch_begin(self, batch, logs=None): ...
    def on_test_batch_end(self, batch, logs=None): ...
    def on_predict_begin(self, logs=None): ...
    def on_predict_end(self, logs=None): ...
    def on_predict_batch_begin(self, batch, logs=None): ...
    def on_predict_batch_end(self, batch, logs=None): ...

    def on_train_batch_begin(self, batch, logs=None):
        self.on_batch_begin(batch, logs=logs)

    def on_train_batch_end(self, batch, logs=None):
        self.on_batch_end(batch, logs=logs)


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


class LambdaCallback(Callback):
    """A callback made of functions, e.g. ``LambdaCallback(on_epoch_end=lambda epoch, logs:
    print(logs["loss"]))``: ``on_epoch_begin(epoch, logs)``, ``on_epoch_end(epoch, logs)``,
    ``on_train_begin(logs)``, ``on_train_end(logs)``, ``on_train_batch_begin(batch, logs)``,
    ``on_train_batch_end(batch, logs)``, and any other hook of :class:`Callback` as a keyword
    (``on_batch_begin=...``)."""

    def __init__(
        self,
        on_epoch_begin=None,
        on_epoch_end=None,
        on_train_begin=None,
        on_train_end=None,
        on_train_batch_begin=None,
        on_train_batch_end=None,
        **kwargs,
    ):
        hooks = [k for k in dir(Callback) if k.startswith("on_")]
        unknown = [k for k in kwargs if k not in hooks]
        if unknown:
            raise TypeError(
                f"LambdaCallback: unknown hook(s) {unknown}; the hooks are {', '.join(hooks)}."
            )
        given = dict(
            on_epoch_begin=on_epoch_begin,
            on_epoch_end=on_epoch_end,
            on_train_begin=on_train_begin,
            on_train_end=on_train_end,
            on_train_batch_begin=on_train_batch_begin,
            on_train_batch_end=on_train_batch_end,
            **kwargs,
        )
        for hook, fn in given.items():
            if fn is None:
                continue
            if not callable(fn):
                raise TypeError(f"LambdaCallback: {hook} must be a function, got {fn!r}.")
            numbered = hook.endswith(("epoch_begin", "epoch_end", "batch_begin", "batch_end"))
            setattr(self, hook, _with_logs(fn, logs_only=not numbered))


def _with_logs(fn, logs_only):
    """``fn`` called as Keras calls a LambdaCallback's functions: with the logs always given
    (a dict), after the epoch or batch number unless ``logs_only``."""
    if logs_only:
        return lambda logs=None: fn({} if logs is None else logs)
    return lambda index, logs=None: fn(index, {} if logs is None else logs)


class TerminateOnNaN(Callback):
    """Stop training when a batch's loss is NaN or infinite.

    By default training stops gracefully (``model.stop_training = True``; the weights are those
    from before that batch and ``on_train_end`` runs); ``raise_error=True`` raises a
    RuntimeError at once instead. Without this callback fit raises FloatingPointError.
    """

    def __init__(self, raise_error=False):
        self.raise_error = bool(raise_error)

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None or math.isfinite(loss):
            return
        if self.raise_error:
            raise RuntimeError(f"Batch {batch}: invalid loss {loss}, terminating training.")
        print(f"Batch {batch}: Invalid loss, terminating training")
        self.model.stop_training = True


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
