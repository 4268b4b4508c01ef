"""Training and evaluation: compile, fit, evaluate, predict (mixed into Sequential).

fit is a plain loop over epochs and batches: forward, loss, backward, optimizer step, callbacks.
"""

from __future__ import annotations

import math

import numpy as np

from slidenet import losses as losses_mod
from slidenet import metrics as metrics_mod
from slidenet import optimizers as optimizers_mod
from slidenet._validation import as_array, as_float_array, fmt_shape
from slidenet.callbacks import CallbackList, History, ProgressBar
from slidenet.models import data_adapter as batch_data
from slidenet.models import sharded_step
from slidenet.models.saving import file_history
from slidenet.models.training_utils import (  # noqa: F401 - re-exported
    PREDICT_CHUNK_BYTES,
    _accumulate,
    _check_batch_size,
    _check_finite,
    _means,
    _merge_shared,
)
from slidenet.utils.random import spawn_generator


class TrainingMixin:
    """compile / fit / evaluate / predict for a model that has _forward and _backward."""

    # ----- compile ---------------------------------------------------------------------------
    def compile(self, optimizer="rmsprop", loss=None, metrics=None) -> None:
        """Choose optimizer, loss and metrics (Keras names or objects)."""
        if loss is None:
            raise ValueError("compile: give a loss, e.g. loss='sparse_categorical_crossentropy'.")
        self.optimizer = optimizers_mod.get(optimizer)
        self.loss = losses_mod.get(loss)
        if metrics is not None and not isinstance(metrics, list | tuple):
            metrics = [metrics]
        self._metric_names = list(metrics or [])
        for m in self._metric_names:  # fail early on unknown names
            metrics_mod.resolve(m, self.loss.name, (2,))
        self.metric_fns = []

    def _resolve_metrics(self):
        self.metric_fns = [
            metrics_mod.resolve(m, self.loss.name, self.output_shape) for m in self._metric_names
        ]

    def _require_compiled(self, who):
        if self.optimizer is None or self.loss is None:
            raise RuntimeError(
                f"{who}: compile the model first, e.g. model.compile('adam', loss=...)."
            )

    def save_weights(self, filepath) -> None:
        """Write the weights alone (no architecture); read back with load_weights."""
        from slidenet.models.weights_file import save_weights

        save_weights(self, filepath)

    def load_weights(self, filepath) -> None:
        """Set the weights from save_weights' (or save's) file; shapes must match this model."""
        from slidenet.models.weights_file import load_weights

        load_weights(self, filepath)

    # ----- data checks -----------------------------------------------------------------------
    def _prepare_x(self, x, who, lazy=False, empty_ok=False) -> np.ndarray:
        """Check x and return it as the model's dtype; with ``lazy`` an ndarray (a memmap too) is
        checked in chunks and returned uncast, without copying: take batches with _batch."""
        if lazy and isinstance(x, np.ndarray) and x.ndim > 0:
            as_float_array(x[:0], who, "x")  # refuses object, complex, string dtypes
            _check_finite(x, who)
        else:
            x = as_float_array(x, who, "x")
        if x.ndim == 0 or (x.shape[0] == 0 and not empty_ok):  # predict: 0 in, 0 out (Keras)
            raise ValueError(f"{who}: x is empty (shape {fmt_shape(x.shape)}); nothing to do.")
        if not self.layers:
            raise ValueError(f"{who}: the model has no layers; add some with model.add(...).")
        if self._input_shape is None:
            self.build(x.shape[1:])
        elif not self.built:
            self.build()
        want = self._input_shape
        if x.shape[1:] != want and x.ndim == len(want) and want[-1] == 1:
            if x.shape[1:] == want[:-1]:
                x = x[..., None]  # (N, H, W) fed to a model declared with (H, W, 1)
        if x.shape[1:] != want:
            raise ValueError(
                f"{who}: x has shape {fmt_shape(x.shape)} but the model expects "
                f"{fmt_shape((None, *want))} (input_shape={fmt_shape(want)})."
            )
        return x if lazy else x.astype(self.dtype, copy=False)

    def _batch(self, x, index):
        """x[index] as a plain array of the model's dtype (only this batch is read and cast)."""
        return np.asarray(x[index], dtype=self.dtype)

    def _prepare_xy(self, x, y, who, lazy=False):
        x = self._prepare_x(x, who, lazy)
        if y is None:
            raise ValueError(f"{who}: y (the targets) is missing.")
        y_arr = as_array(y, who, "y")
        if y_arr.ndim == 0 or len(y_arr) != len(x):
            raise ValueError(
                f"{who}: x has {len(x)} examples but y has "
                f"{len(y_arr) if y_arr.ndim else 'no'} (shape {fmt_shape(y_arr.shape)}); "
                "they must match."
            )
        y_arr = self.loss.check_targets(y_arr, (len(x), *self.layers[-1]._out), who)
        if not self.metric_fns and self._metric_names:
            self._resolve_metrics()
        return x, y_arr

    def _loss_and_grad(self, out, y):
        """(loss, gradient, fused): fused means the gradient is w.r.t. the last layer's logits."""
        last = self.layers[-1]
        fused = (
            not self.loss.from_logits
            and self.loss.fused_activation is not None
            and getattr(last, "activation", None) == self.loss.fused_activation
        )
        if fused:
            loss, grad = self.loss.forward_logits(y, last.logits)
        else:
            loss, grad = self.loss.forward(y, out)
        return loss, grad, fused

    def _train_step(self, x, y):
        # forward, loss and backward (layer.grads), the batch split over threads when it pays
        loss, out = sharded_step.forward_backward(self, x, y)
        if not math.isfinite(loss):  # overflow: fit reports it with epoch and batch
            return loss, out
        pairs = [
            (w, g)
            for layer in self.layers
            if layer.trainable
            for w, g in zip(layer.weights, layer.grads, strict=True)
            if g is not None
        ]
        if len({id(w) for w, _ in pairs}) < len(pairs):  # a layer in a nested model and outside
            pairs = _merge_shared(pairs)
        penalties = {id(w): (w, reg) for w, reg in self._penalized("regularized_weights")}
        if penalties:  # regularizers: their penalty joins the loss, their gradient the weight's
            loss += sum(reg(w) for w, reg in penalties.values())
            pairs = [
                (w, g + penalties[id(w)][1].gradient(w) if id(w) in penalties else g)
                for w, g in pairs
            ]
        self.optimizer.apply([w for w, _ in pairs], [g for _, g in pairs])
        for w, constraint in self._penalized("constrained_weights"):
            w[...] = constraint(w)
        return loss, out

    def _penalized(self, which) -> list:
        """(weight, regularizer or constraint) pairs of every layer, nested ones included."""
        found, seen, stack = [], set(), list(self.layers)
        while stack:
            layer = stack.pop()
            if id(layer) in seen:
                continue
            seen.add(id(layer))
            found += getattr(layer, which, lambda: [])()
            stack += getattr(layer, "_sublayers", lambda: [])()
        return found

    def regularization_loss(self) -> float:
        """The sum of every regularizer's penalty on the current weights (Keras' model.losses)."""
        return float(sum(reg(w) for w, reg in self._penalized("regularized_weights")))

    def _metric_values(self, y, out):
        return {name: metrics_mod.batch_value(fn, y, out) for name, fn in self.metric_fns}

    def train_on_batch(self, x, y):
        """One optimizer step on (x, y); returns the loss, or [loss, *metrics] with metrics."""
        self._require_compiled("train_on_batch")
        x, y = self._prepare_xy(x, y, "train_on_batch")
        loss, out = self._train_step(x, y)
        if not math.isfinite(loss):
            raise FloatingPointError(
                f"train_on_batch: loss is {loss}; the weights were not updated. Lower the learning "
                "rate or check the inputs are scaled (e.g. x / 255)."
            )
        return self._result(loss, self._metric_values(y, out))

    def test_on_batch(self, x, y):
        """Loss (and metrics) of one batch in inference mode."""
        self._require_compiled("test_on_batch")
        x, y = self._prepare_xy(x, y, "test_on_batch")
        out = self._forward(x, training=False)
        loss = self._loss_and_grad(out, y)[0] + self.regularization_loss()
        return self._result(loss, self._metric_values(y, out))

    def predict_on_batch(self, x):
        """Outputs for one batch in inference mode."""
        return self._forward(self._prepare_x(x, "predict_on_batch", empty_ok=True), training=False)

    def _result(self, loss, metrics):
        return [loss, *map(metrics_mod.log_value, metrics.values())] if metrics else loss

    # ----- many batches ----------------------------------------------------------------------
    def fit(
        self,
        x=None,
        y=None,
        batch_size=32,
        epochs=1,
        verbose=1,
        callbacks=None,
        validation_split=0.0,
        validation_data=None,
        shuffle=True,
        initial_epoch=0,
        steps_per_epoch=None,
        validation_steps=None,
    ):
        """Train for ``epochs`` epochs (counted from ``initial_epoch``); returns a History.

        Args:
            x: inputs (N, ...) as the first layer expects (a (H, W, 1) model also takes (N, H, W)).
                Read and cast to float32 one batch at a time, so it may be a memory-mapped array
                (``np.load(path, mmap_mode="r")``) of uint8 images larger than memory.
            y: targets: int labels (N,), one-hot (N, K), or values shaped like the output.
            batch_size: examples per step. verbose: 0 silent, 1 progress bar, 2 a line per epoch.
            validation_split: fraction of the data, taken from the end before shuffling, kept
                out of training and evaluated after each epoch (val_loss, val_accuracy).
            validation_data: (x_val, y_val) instead of a split.

        x may instead be batch data, an iterable of (x, y) batches (a generator, or
        ``utils.image_dataset_from_directory``'s result; see :mod:`slidenet.models.data_adapter`),
        with y=None; then batch_size, shuffle and validation_split do not apply, and
        ``steps_per_epoch`` sets the batches per epoch (default: a full pass; needed for a
        generator over several epochs). ``validation_data`` may be batch data too, with
        ``validation_steps``.
        """
        self._require_compiled("fit")
        batch_size = _check_batch_size(batch_size, "fit")
        if not 0 <= validation_split < 1:
            raise ValueError(f"fit: validation_split must be in [0, 1), got {validation_split}.")
        runs = max(epochs - initial_epoch, 1)
        if batch_data.is_batch_data(x):
            return batch_data.fit_batch_data(
                self, x, y, batch_size, epochs, verbose, callbacks, validation_split,
                validation_data, initial_epoch, steps_per_epoch, validation_steps,
            )  # fmt: skip
        if steps_per_epoch is not None:
            raise ValueError(
                "fit: steps_per_epoch applies to data given as batches (a dataset or generator); "
                "with arrays, batch_size sets the steps."
            )
        x, y = self._prepare_xy(x, y, "fit", lazy=True)
        if validation_data is None and validation_split:
            n_val = int(len(x) * validation_split)
            if n_val == 0 or n_val == len(x):
                raise ValueError(
                    f"fit: validation_split={validation_split} of {len(x)} examples leaves "
                    f"{n_val} for validation; use a larger split or more data."
                )
            validation_data = (x[-n_val:], y[-n_val:])
            x, y = x[:-n_val], y[:-n_val]
        validate = batch_data.validator(self, validation_data, validation_steps, batch_size, runs)
        if self._rng is None:
            self._rng = spawn_generator()
        return self._fit_loop(
            lambda: self._array_batches(x, y, batch_size, shuffle),
            math.ceil(len(x) / batch_size),
            None,
            validate,
            epochs,
            initial_epoch,
            callbacks,
            ProgressBar(verbose, epochs, batch_size, len(x)) if verbose else None,
        )

    def _array_batches(self, x, y, batch_size, shuffle):
        """One epoch of (x, y) batches of arrays, in a new order each epoch with shuffle."""
        n = len(x)
        order = self._rng.permutation(n) if shuffle else np.arange(n)
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            if shuffle:
                yield self._batch(x, idx), y[idx]
            else:
                part = slice(idx[0], idx[-1] + 1)
                yield self._batch(x, part), y[part]

    def _fit_loop(
        self, epoch_batches, steps, stream, validate, epochs, initial_epoch, callbacks, bar
    ):
        """fit's loop over epochs and batches: ``epoch_batches()`` yields one epoch's (x, y),
        ``steps`` of them when known; ``stream`` is the BatchStream of batch data (else None)."""
        # the file keeps every epoch's logs: those of the run this one continues, then these
        self._prior_history = (
            {k: v[:initial_epoch] for k, v in file_history(self).items()} if initial_epoch else {}
        )
        self.history = History()
        cbs = [self.history, *(callbacks or []), *([bar] if bar is not None else [])]
        cb = CallbackList(cbs, self)
        self.stop_training = False
        cb.on_train_begin()
        # BackupAndRestore may have restored a later epoch in on_train_begin (as in Keras)
        initial_epoch = getattr(self, "_initial_epoch", None) or initial_epoch
        self._initial_epoch = None
        try:
            for epoch in range(initial_epoch, epochs):
                cb.on_epoch_begin(epoch)
                totals, stopped_at_nan = {}, False
                for batch, (xb, yb) in enumerate(epoch_batches()):
                    cb.on_train_batch_begin(batch)
                    loss, out = self._train_step(xb, yb)
                    if not math.isfinite(loss):
                        cb.on_train_batch_end(batch, {**_means(totals), "loss": loss})
                        if self.stop_training:  # TerminateOnNaN: weights from before the batch
                            stopped_at_nan = True
                            break
                        cb.on_train_end()
                        raise FloatingPointError(
                            f"fit: loss became {loss} at epoch {epoch + 1}, batch {batch + 1}"
                            f"{f' of {steps}' if steps else ''}; training stopped and the weights "
                            "are those from before that batch. Lower the learning rate or check "
                            "the inputs are scaled (e.g. x / 255)."
                        )
                    _accumulate(totals, {"loss": loss, **self._metric_values(yb, out)}, len(yb))
                    cb.on_train_batch_end(batch, _means(totals))
                if stopped_at_nan:
                    break  # no epoch end for the epoch that stopped at a non-finite loss
                if not totals:  # batch data that ran out (with a warning) or yielded nothing
                    if stream.ran_out:
                        break
                    raise ValueError(f"fit: x yielded no batches in epoch {epoch + 1}.")
                logs = _means(totals)
                if validate is not None:
                    logs.update({f"val_{k}": v for k, v in validate().items()})
                logs["learning_rate"] = self.optimizer.learning_rate
                self.epoch = epoch + 1
                cb.on_epoch_end(epoch, logs)
                if self.stop_training or (stream is not None and stream.exhausted):
                    break
        except BaseException:  # Ctrl-C or an error: close the progress bar before it surfaces
            for c in cbs:
                if isinstance(c, ProgressBar):
                    c.close()
            raise
        cb.on_train_end()
        return self.history

    def _evaluate_arrays(self, x, y, batch_size):
        totals = {}
        penalty = self.regularization_loss()  # as in fit's loss (Keras' model.losses)
        for start in range(0, len(x), batch_size):
            part = slice(start, start + batch_size)
            xb, yb = self._batch(x, part), y[part]
            out = self._forward(xb, training=False)
            loss = self._loss_and_grad(out, yb)[0] + penalty
            _accumulate(totals, {"loss": loss, **self._metric_values(yb, out)}, len(yb))
        return _means(totals)

    def evaluate(self, x=None, y=None, batch_size=32, verbose=1, steps=None):
        """Mean loss (and metrics) over (x, y) in inference mode: a float, or [loss, *metrics].
        x may be batch data, (x, y) batches with y=None, of which ``steps`` batches are used
        (default: a full pass)."""
        self._require_compiled("evaluate")
        batch_size = _check_batch_size(batch_size, "evaluate")
        if batch_data.is_batch_data(x):
            stream = batch_data.BatchStream(x, steps, "evaluate", steps_name="steps", y=y)
            logs = batch_data.evaluate_batches(self, stream, "evaluate")
        else:
            x, y = self._prepare_xy(x, y, "evaluate", lazy=True)
            logs = self._evaluate_arrays(x, y, batch_size)
        if verbose:
            print(" - ".join(f"{k}: {v:.4f}" for k, v in logs.items()))
        values = list(logs.values())
        return values if len(values) > 1 else values[0]

    def _largest_fast_chunk(self) -> int:
        """Examples per forward pass in predict: at least 16, and as many as keep the largest
        activation of one chunk under PREDICT_CHUNK_BYTES."""
        sizes = [int(np.prod(layer._out)) for layer in self.layers if layer._out is not None]
        per_example = max(sizes, default=1) * self.dtype.itemsize
        return max(16, PREDICT_CHUNK_BYTES // max(per_example, 1))

    def predict(self, x, batch_size=32, verbose=0, steps=None):
        """Outputs for x in inference mode, computed in chunks of ``batch_size`` examples (or
        smaller ones for large activations: the grouping changes nothing beyond float rounding).
        x may be batch data (batches of x, or (x, y) whose y is ignored): ``steps`` batches of
        it (default: a full pass), concatenated.

        Only one chunk of x is read and cast at a time, so x may be a memory-mapped array
        larger than memory (``np.load(path, mmap_mode="r")``); the result is allocated once.
        0 examples give an empty (0, ...) array, as in Keras. Outputs that overflow to NaN or Inf
        from finite inputs raise FloatingPointError naming the layer.
        """
        if batch_data.is_batch_data(x):
            return batch_data.predict_batches(self, x, steps)
        batch_size = min(_check_batch_size(batch_size, "predict"), self._largest_fast_chunk())
        x = self._prepare_x(x, "predict", lazy=True, empty_ok=True)
        out = sharded_step.predict_in_threads(self, x, batch_size, self._batch)
        if out is not None:  # chunks spread over the cores (models/sharded_step.py)
            return out
        for start in range(0, len(x), batch_size):
            chunk = self._forward(self._batch(x, slice(start, start + batch_size)), training=False)
            if out is None:
                out = np.empty((len(x), *chunk.shape[1:]), chunk.dtype)
            out[start : start + len(chunk)] = chunk
        if out is None:  # 0 examples (x is uncast here: cast the empty batch too)
            return self._forward(self._batch(x, slice(0, 0)), training=False)
        return out
