"""Data given as batches: fit, evaluate and predict over iterables (Keras 3's data adapters, small).

Besides arrays, ``fit`` / ``evaluate`` / ``predict`` take *batch data*: a generator, an iterator or
any iterable object (``utils.image_dataset_from_directory``'s result, a class with ``__iter__``)
yielding batches ``(x, y)``; ``predict`` also takes batches of ``x`` alone. A list or tuple is
unpacked as Keras unpacks it: ``(x,)``, ``(x, y)``; anything else is ``x``. ``x`` may be a list or
dict of arrays for a model with several inputs, ``y`` likewise for several outputs.

Epochs follow Keras 3's EpochIterator:

* without ``steps_per_epoch`` each epoch is one full pass, ``iter(data)`` anew (a dataset
  reshuffles); a generator can be read only once, so more than one epoch needs
  ``steps_per_epoch``;
* with ``steps_per_epoch`` each epoch takes that many batches and the next epoch continues the same
  pass. A pass of a dataset with ``len`` ends the epoch early (with a warning when it comes
  before ``steps_per_epoch``) and the next epoch starts a new pass; data that runs out
  (``StopIteration``) ends the epoch with a warning, and a generator that ran out stops training.
"""

from __future__ import annotations

import functools
import itertools
import time
import warnings
from collections.abc import Iterable, Iterator

import numpy as np

from slidenet.callbacks import ProgressBar


def is_batch_data(x) -> bool:
    """True for batch data: an iterable that is not an array, list, tuple, dict or string."""
    if x is None or isinstance(x, np.ndarray | list | tuple | dict | str | bytes):
        return False
    if hasattr(x, "__array__") or hasattr(x, "__array_interface__"):
        return False  # array-likes (tensors, data frames) are arrays, not batches
    return isinstance(x, Iterable)


def unpack_batch(batch, who):
    """(x, y) of one batch as Keras unpacks it; y is None for a batch of x alone."""
    if isinstance(batch, list):
        batch = tuple(batch)
    if not isinstance(batch, tuple):
        return batch, None
    if len(batch) == 1:
        return batch[0], None
    if len(batch) == 2:
        return batch
    if len(batch) == 3:
        raise ValueError(
            f"{who}: batches of (x, y, sample_weight) are not supported; yield (x, y)."
        )
    raise ValueError(
        f"{who}: a batch must be x, (x,) or (x, y); got a tuple of {len(batch)} items."
    )


def _positive_steps(value, who, name):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{who}: {name} must be a positive integer or None, got {value!r}.")
    return int(value)


class BatchStream:
    """Epochs of batches from batch data ``data``: ``steps`` per epoch (None: a full pass)."""

    def __init__(self, data, steps, who, what="x", steps_name="steps_per_epoch", passes=1, y=None):
        if y is not None:
            raise ValueError(
                f"{who}: {what} is a dataset or generator of batches, so y must be None: the "
                "targets come in the batches, as (x, y)."
            )
        self.data, self.who, self.what = data, who, what
        self.steps = _positive_steps(steps, who, steps_name)
        self.one_shot = isinstance(data, Iterator)  # a generator: iter(data) is data
        try:
            self.size = len(data)
        except TypeError:
            self.size = None
        if self.one_shot and self.steps is None and self.size is None and passes > 1:
            raise ValueError(
                f"{who}: {what} is a generator (an iterator, read only once) and {passes} "
                f"epochs were asked for; pass {steps_name}=... (the batches per epoch; required "
                f"for infinite generators too) and make it yield {steps_name} * epochs batches, "
                "or pass a re-iterable dataset."
            )
        self.exhausted = self.ran_out = False  # exhausted: a generator that ran out
        self._it, self._seen, self._pending = None, 0, None

    def peek(self):
        """The first batch, read ahead (fit builds the model from it); the first epoch still
        yields it."""
        it = iter(self.data)
        try:
            first = next(it)
        except StopIteration:
            raise ValueError(f"{self.who}: {self.what} yielded no batches.") from None
        self._pending = itertools.chain([first], it)
        return first

    def _new_pass(self):
        it, self._pending = self._pending or iter(self.data), None
        return it

    @property
    def num_batches(self):
        """Batches per epoch when known (steps, or the length of a pass), else None."""
        return self.steps or self.size

    def epoch(self):
        """Yield this epoch's raw batches."""
        self.ran_out = False
        if self.steps is None:
            yield from self._new_pass()
            return
        if self._it is None:
            self._it, self._seen = self._new_pass(), 0
        for step in range(self.steps):
            if self.size is not None and self._seen >= self.size:
                warnings.warn(
                    f"{self.who}: {self.what} has {self.size} batches per pass but "
                    f"steps={self.steps}; this epoch ended after {step}.",
                    stacklevel=4,
                )
                break
            try:
                batch = next(self._it)
            except StopIteration:
                self._it, self.exhausted, self.ran_out = None, self.one_shot, True
                warnings.warn(
                    f"{self.who}: {self.what} ran out of data after {step} of {self.steps} "
                    "batches in this epoch; interrupting. Make sure the dataset or generator "
                    "yields at least steps * epochs batches.",
                    stacklevel=4,
                )
                return
            self._seen += 1
            yield batch
        if self.size is not None and self._seen >= self.size:
            self._it = None  # the pass is complete: the next epoch starts a new one


def checked_batch(model, batch, who, i):
    """One (x, y) batch checked and cast by the model (which it builds when unbuilt)."""
    xb, yb = unpack_batch(batch, who)
    if yb is None:
        raise ValueError(f"{who}: batch {i + 1} holds x only; yield (x, y) pairs.")
    return model._prepare_xy(xb, yb, f"{who} (batch {i + 1})")


def checked_batches(model, stream, who):
    """This epoch's (x, y) batches of ``stream``, checked and cast."""
    for i, batch in enumerate(stream.epoch()):
        yield checked_batch(model, batch, who, i)


def evaluate_batches(model, stream, who) -> dict:
    """Mean loss and metrics over one epoch of ``stream`` in inference mode."""
    from slidenet.models.training import _accumulate, _means

    totals = {}
    for xb, yb in checked_batches(model, stream, who):
        out = model._forward(xb, training=False)
        loss = model._loss_and_grad(out, yb)[0] + model.regularization_loss()
        _accumulate(totals, {"loss": loss, **model._metric_values(yb, out)}, len(yb))
    if not totals:
        raise ValueError(f"{who}: {stream.what} yielded no batches.")
    return _means(totals)


def fit_batch_data(model, x, y, batch_size, epochs, verbose, callbacks, validation_split,
                   validation_data, initial_epoch, steps_per_epoch, validation_steps):  # fmt: skip
    """``model.fit`` on batch data ``x`` (its arguments, in order)."""
    if validation_split:
        raise ValueError(
            "fit: validation_split needs arrays; with a dataset or generator pass "
            "validation_data=... (e.g. image_dataset_from_directory(..., subset='validation'))."
        )
    runs = max(epochs - initial_epoch, 1)
    stream = BatchStream(x, steps_per_epoch, "fit", passes=runs, y=y)
    if not model.built:  # build from the first batch before the callbacks see the model
        checked_batch(model, stream.peek(), "fit", 0)
    validate = validator(model, validation_data, validation_steps, batch_size, runs)
    bar = StepProgressBar(verbose, epochs, stream.num_batches) if verbose else None
    return model._fit_loop(
        functools.partial(checked_batches, model, stream, "fit"),
        stream.num_batches,
        stream,
        validate,
        epochs,
        initial_epoch,
        callbacks,
        bar,
    )


def validator(model, validation_data, validation_steps, batch_size, runs):
    """A function giving the logs of one validation in fit (None without validation data)."""
    if validation_data is None:
        return None
    who = "fit (validation_data)"
    if is_batch_data(validation_data):
        stream = BatchStream(
            validation_data, validation_steps, "fit", "validation_data", "validation_steps", runs
        )
        return functools.partial(evaluate_batches, model, stream, who)
    if not isinstance(validation_data, tuple | list) or len(validation_data) != 2:
        raise ValueError(
            "fit: validation_data must be a tuple (x_val, y_val) or a dataset of (x, y) batches."
        )
    x_val, y_val = model._prepare_xy(*validation_data, who, lazy=True)
    return functools.partial(model._evaluate_arrays, x_val, y_val, batch_size)


def predict_batches(model, data, steps=None, who="predict"):
    """Outputs for every batch of ``data`` (batches of x, (x,) or (x, y)), concatenated: an array,
    a list of arrays for several outputs, or a dict when the model's outputs were a dict."""
    stream = BatchStream(data, steps, who, steps_name="steps")
    chunks = []
    for i, batch in enumerate(stream.epoch()):
        xb = model._prepare_x(unpack_batch(batch, who)[0], f"{who} (batch {i + 1})", empty_ok=True)
        out = model._forward(xb, training=False)
        chunks.append(out if isinstance(out, list) else [out])
    if not chunks:
        raise ValueError(f"{who}: x yielded no batches.")
    outs = [np.concatenate(parts) for parts in zip(*chunks, strict=True)]
    if getattr(model, "_output_struct", "single") == "dict":
        return dict(zip(model.output_names, outs, strict=True))
    return outs if len(outs) > 1 else outs[0]


class StepProgressBar(ProgressBar):
    """fit's progress for batch data: counts steps (the total may be unknown), as Keras does."""

    def __init__(self, verbose, epochs, steps):
        super().__init__(verbose, epochs, 1, steps)

    def on_epoch_begin(self, epoch, logs=None):
        self._t0, self._steps = time.perf_counter(), 0
        if self.verbose == 1:
            from tqdm.auto import tqdm

            self._bar = tqdm(
                total=self.samples,
                desc=f"Epoch {epoch + 1}/{self.epochs}",
                unit="step",
                leave=True,
                dynamic_ncols=True,
            )

    def on_train_batch_end(self, batch, logs=None):
        self._steps += 1
        if self.verbose == 1:
            self._bar.update(1)
            self._bar.set_postfix_str(_fmt(logs), refresh=False)

    def on_epoch_end(self, epoch, logs=None):
        elapsed = time.perf_counter() - self._t0
        text = _fmt({k: v for k, v in (logs or {}).items() if k != "learning_rate"})
        if self.verbose == 1:
            self._bar.set_postfix_str(text, refresh=True)
            self._bar.close()
        elif self.verbose == 2:
            rate = self._steps / elapsed if elapsed > 0 else float("inf")
            print(
                f"Epoch {epoch + 1}/{self.epochs} - {self._steps} steps - {elapsed:.1f}s - "
                f"{rate:.1f} steps/s - {text}",
                flush=True,
            )


def _fmt(logs):
    return " - ".join(
        f"{k}: {v:.4f}" for k, v in (logs or {}).items() if isinstance(v, float | int)
    )
