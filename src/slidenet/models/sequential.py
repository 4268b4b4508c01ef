"""Sequential: a stack of layers, trained by a plain loop over epochs and batches.

Forward: x -> layer_1 -> ... -> layer_n -> loss. Backward: the loss gradient goes through
``layer.backward`` in reverse order, then the optimizer updates every weight from ``layer.grads``.
"""

from __future__ import annotations

import math

import numpy as np

from slidenet import losses as losses_mod
from slidenet import metrics as metrics_mod
from slidenet import optimizers as optimizers_mod
from slidenet._validation import as_float_array, fmt_shape
from slidenet.callbacks import CallbackList, History, ProgressBar
from slidenet.layers.base import Layer, unique_name
from slidenet.layers.convolutional import Conv2D
from slidenet.layers.core import InputLayer
from slidenet.layers.pooling import _Pooling2D
from slidenet.ops.activations import relu_backward, relu_forward
from slidenet.utils.random import spawn_generator


class Sequential:
    """A linear stack of layers with Keras' model API.

    >>> import slidenet as keras
    >>> model = keras.Sequential([keras.layers.Input((28, 28, 1)),
    ...                           keras.layers.Conv2D(8, 5, padding="same", activation="relu"),
    ...                           keras.layers.MaxPooling2D(2), keras.layers.Flatten(),
    ...                           keras.layers.Dense(10, activation="softmax")])
    >>> model.output_shape
    (None, 10)
    """

    def __init__(self, layers=None, name=None):
        self.name = name or unique_name("sequential")
        self.layers: list[Layer] = []
        self._input_shape: tuple[int, ...] | None = None
        self.optimizer = None
        self.loss = None
        self.metric_fns: list[tuple[str, callable]] = []
        self._metric_names: list = []
        self.stop_training = False
        self.history = None
        self.epoch = 0  # epochs completed by fit, kept in model files
        self._rng = None  # shuffling; created at the first fit
        self._moved_relu = {}  # see _forward
        for layer in layers or []:
            self.add(layer)

    # ----- building ------------------------------------------------------------------------
    def add(self, layer) -> None:
        """Append a layer; with a known input shape it is built (and checked) at once."""
        if not isinstance(layer, Layer):
            raise TypeError(
                f"Sequential.add: expected a slidenet layer, got {type(layer).__name__}; "
                "did you forget the parentheses, e.g. Flatten()?"
            )
        if isinstance(layer, InputLayer):
            if self.layers:
                raise ValueError("Sequential.add: Input(...) must come before every other layer.")
            self._input_shape = layer.shape
            return
        if any(existing.name == layer.name for existing in self.layers):
            raise ValueError(
                f"Sequential.add: a layer named '{layer.name}' is already in the model; "
                "layer names must be unique."
            )
        if not self.layers and self._input_shape is None and layer.input_shape_arg is not None:
            self._input_shape = layer.input_shape_arg
        shape = self._shape_after(self.layers)
        if shape is not None:
            self._build_layer(layer, shape)
        self.layers.append(layer)

    def _shape_after(self, layers):
        if self._input_shape is None:
            return None
        return layers[-1]._out if layers else self._input_shape

    @staticmethod
    def _build_layer(layer, shape):
        if not layer.built:
            layer.build(shape)
        elif layer._in != tuple(shape):
            raise ValueError(
                f"{layer.label} was built for input {fmt_shape(layer.input_shape)} but follows "
                f"an output of shape {fmt_shape((None, *shape))}."
            )

    def build(self, input_shape=None) -> None:
        """Build every layer for examples of ``input_shape`` (batch axis optional, as in Keras)."""
        if input_shape is not None:
            input_shape = tuple(input_shape)
            if input_shape and input_shape[0] is None:
                input_shape = input_shape[1:]
            self._input_shape = tuple(int(s) for s in input_shape)
        if self._input_shape is None:
            raise ValueError(
                f"Model '{self.name}' has no input shape; give the first layer input_shape=..."
            )
        for i, layer in enumerate(self.layers):
            self._build_layer(layer, self._shape_after(self.layers[:i]))

    @property
    def built(self) -> bool:
        return self._input_shape is not None and all(layer.built for layer in self.layers)

    @property
    def input_shape(self):
        return None if self._input_shape is None else (None, *self._input_shape)

    @property
    def output_shape(self):
        return self.layers[-1].output_shape if self.layers and self.built else None

    @property
    def dtype(self):
        return self.layers[0].dtype if self.layers else np.dtype("float32")

    # ----- weights ---------------------------------------------------------------------------
    @property
    def weights(self) -> list[np.ndarray]:
        return [w for layer in self.layers for w in layer.weights]

    def get_weights(self) -> list[np.ndarray]:
        """Copies of every layer's weights, layer by layer."""
        return [w for layer in self.layers for w in layer.get_weights()]

    def set_weights(self, weights) -> None:
        """Set every layer's weights from a list like :meth:`get_weights` returns."""
        weights = list(weights)
        expected = sum(len(layer.weights) for layer in self.layers)
        if len(weights) != expected:
            raise ValueError(
                f"Model '{self.name}' has {expected} weight arrays, got {len(weights)}."
            )
        i = 0
        for layer in self.layers:
            n = len(layer.weights)
            layer.set_weights(weights[i : i + n])
            i += n

    def count_params(self) -> int:
        if not self.built:
            raise ValueError(f"Model '{self.name}' is not built; give it an input shape first.")
        return sum(layer.count_params() for layer in self.layers)

    def summary(self, print_fn=None, line_length=None) -> None:
        """Print Keras' table plus the output-size arithmetic of conv and pool layers."""
        from slidenet.models.summary import summary_text

        (print_fn or print)(summary_text(self, line_length))

    def save(self, filepath) -> None:
        """Write architecture, weights, compile settings, optimizer and RNG state to one file."""
        from slidenet.models.saving import save_model

        save_model(self, filepath)

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

    # ----- data checks -----------------------------------------------------------------------
    def _prepare_x(self, x, who) -> np.ndarray:
        x = as_float_array(x, who, "x")
        if x.ndim == 0 or x.shape[0] == 0:
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
        return x.astype(self.dtype, copy=False)

    def _prepare_xy(self, x, y, who):
        x = self._prepare_x(x, who)
        if y is None:
            raise ValueError(f"{who}: y (the targets) is missing.")
        y_arr = np.asarray(y)
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

    # ----- one batch -------------------------------------------------------------------------
    def _relu_moves_past_pool(self, i) -> bool:
        """Is layer i a ReLU convolution followed by a max pool? Then the model pools first and
        applies the ReLU to the 4x smaller pooled output: max and ReLU commute
        (relu(max(z)) == max(relu(z))), so outputs and gradients are the same."""
        if i + 1 >= len(self.layers):
            return False
        conv, pool = self.layers[i], self.layers[i + 1]
        return (
            isinstance(conv, Conv2D)
            and conv.activation == "relu"
            and isinstance(pool, _Pooling2D)
            and pool.kind == "max"
        )

    def _forward(self, x, training):
        self._moved_relu = {}  # index of a max pool -> mask of the ReLU applied after it
        moved = False
        for i, layer in enumerate(self.layers):
            if self._relu_moves_past_pool(i):
                x, moved = layer.forward(x, training, activate=False), True
            elif moved:
                x, self._moved_relu[i] = relu_forward(layer(x, training=training))
                moved = False
            else:
                x = layer(x, training=training)
        return x

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

    def _backward(self, grad, fused, need_dx=True):
        """Backpropagate from the loss to the input; returns d loss / d x.

        With need_dx=False (training) a first convolution skips its input gradient and None is
        returned.
        """
        for i in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[i]
            kwargs = {"from_logits": True} if fused and i == len(self.layers) - 1 else {}
            if i in self._moved_relu:
                grad = relu_backward(grad, self._moved_relu[i])
            if self._relu_moves_past_pool(i):
                kwargs["from_logits"] = True  # its ReLU was applied (and undone) after the pool
            if i == 0 and not need_dx and isinstance(layer, Conv2D):
                kwargs["need_dx"] = False
            grad = layer.backward(grad, **kwargs)
        return grad

    def _train_step(self, x, y):
        # overflow shows up as a non-finite loss, which fit reports with epoch and batch
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            out = self._forward(x, training=True)
            loss, grad, fused = self._loss_and_grad(out, y)
        if not math.isfinite(loss):
            return loss, out
        self._backward(grad, fused, need_dx=False)
        pairs = [
            (w, g)
            for layer in self.layers
            if layer.trainable
            for w, g in zip(layer.weights, layer.grads, strict=True)
            if g is not None
        ]
        self.optimizer.apply([w for w, _ in pairs], [g for _, g in pairs])
        return loss, out

    def _metric_values(self, y, out):
        return {name: fn(y, out) for name, fn in self.metric_fns}

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
        return self._result(self._loss_and_grad(out, y)[0], self._metric_values(y, out))

    def predict_on_batch(self, x):
        """Outputs for one batch in inference mode."""
        return self._forward(self._prepare_x(x, "predict_on_batch"), training=False)

    def _result(self, loss, metrics):
        return [loss, *metrics.values()] if metrics else loss

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
    ):
        """Train for ``epochs`` epochs (counted from ``initial_epoch``); returns a History.

        Args:
            x: inputs (N, ...) as the first layer expects (a (H, W, 1) model also takes (N, H, W)).
            y: targets: int labels (N,), one-hot (N, K), or values shaped like the output.
            batch_size: examples per step. verbose: 0 silent, 1 progress bar, 2 a line per epoch.
            validation_split: fraction of the data, taken from the end before shuffling, kept
                out of training and evaluated after each epoch (val_loss, val_accuracy).
            validation_data: (x_val, y_val) instead of a split.
        """
        self._require_compiled("fit")
        batch_size = _check_batch_size(batch_size, "fit")
        if not 0 <= validation_split < 1:
            raise ValueError(f"fit: validation_split must be in [0, 1), got {validation_split}.")
        x, y = self._prepare_xy(x, y, "fit")
        if validation_data is None and validation_split:
            n_val = int(len(x) * validation_split)
            if n_val == 0 or n_val == len(x):
                raise ValueError(
                    f"fit: validation_split={validation_split} of {len(x)} examples leaves "
                    f"{n_val} for validation; use a larger split or more data."
                )
            validation_data = (x[-n_val:], y[-n_val:])
            x, y = x[:-n_val], y[:-n_val]
        if validation_data is not None:
            if not isinstance(validation_data, tuple | list) or len(validation_data) != 2:
                raise ValueError("fit: validation_data must be a tuple (x_val, y_val).")
            x_val, y_val = self._prepare_xy(*validation_data, "fit (validation_data)")
        if self._rng is None:
            self._rng = spawn_generator()
        n = len(x)
        steps = math.ceil(n / batch_size)
        self.history = History()
        cbs = [self.history, *(callbacks or [])]
        if verbose:
            cbs.append(ProgressBar(verbose, epochs, batch_size, n))
        cb = CallbackList(cbs, self)
        self.stop_training = False
        cb.on_train_begin()
        for epoch in range(initial_epoch, epochs):
            cb.on_epoch_begin(epoch)
            order = self._rng.permutation(n) if shuffle else np.arange(n)
            totals = {}
            for batch in range(steps):
                idx = order[batch * batch_size : (batch + 1) * batch_size]
                if shuffle:
                    xb, yb = x[idx], y[idx]
                else:
                    xb, yb = x[idx[0] : idx[-1] + 1], y[idx[0] : idx[-1] + 1]
                cb.on_train_batch_begin(batch)
                loss, out = self._train_step(xb, yb)
                if not math.isfinite(loss):
                    cb.on_train_end()
                    raise FloatingPointError(
                        f"fit: loss became {loss} at epoch {epoch + 1}, batch {batch + 1} of "
                        f"{steps}; training stopped and the weights are those from before that "
                        "batch. Lower the learning rate or check the inputs are scaled "
                        "(e.g. x / 255)."
                    )
                _accumulate(totals, {"loss": loss, **self._metric_values(yb, out)}, len(xb))
                cb.on_train_batch_end(batch, _means(totals))
            logs = _means(totals)
            if validation_data is not None:
                val = self._evaluate_arrays(x_val, y_val, batch_size)
                logs.update({f"val_{k}": v for k, v in val.items()})
            logs["learning_rate"] = self.optimizer.learning_rate
            self.epoch = epoch + 1
            cb.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        cb.on_train_end()
        return self.history

    def _evaluate_arrays(self, x, y, batch_size):
        totals = {}
        for start in range(0, len(x), batch_size):
            xb, yb = x[start : start + batch_size], y[start : start + batch_size]
            out = self._forward(xb, training=False)
            loss = self._loss_and_grad(out, yb)[0]
            _accumulate(totals, {"loss": loss, **self._metric_values(yb, out)}, len(xb))
        return _means(totals)

    def evaluate(self, x=None, y=None, batch_size=32, verbose=1):
        """Mean loss (and metrics) over (x, y) in inference mode: a float, or [loss, *metrics]."""
        self._require_compiled("evaluate")
        batch_size = _check_batch_size(batch_size, "evaluate")
        x, y = self._prepare_xy(x, y, "evaluate")
        logs = self._evaluate_arrays(x, y, batch_size)
        if verbose:
            print(" - ".join(f"{k}: {v:.4f}" for k, v in logs.items()))
        values = list(logs.values())
        return values if len(values) > 1 else values[0]

    def predict(self, x, batch_size=32, verbose=0):
        """Outputs for x in inference mode, computed in chunks of ``batch_size`` examples."""
        batch_size = _check_batch_size(batch_size, "predict")
        x = self._prepare_x(x, "predict")
        chunks = [
            self._forward(x[start : start + batch_size], training=False)
            for start in range(0, len(x), batch_size)
        ]
        return np.concatenate(chunks, axis=0)

    def __call__(self, x, training=False):
        return self._forward(self._prepare_x(x, "call"), training=training)

    def get_config(self) -> dict:
        return {
            "name": self.name,
            "input_shape": None if self._input_shape is None else list(self._input_shape),
            "layers": [
                {"class_name": type(layer).__name__, "config": layer.get_config()}
                for layer in self.layers
            ],
        }


def _check_batch_size(batch_size, who):
    if batch_size is None:
        return 32
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, int | np.integer)
        or batch_size < 1
    ):
        raise ValueError(f"{who}: batch_size must be a positive integer, got {batch_size!r}.")
    return int(batch_size)


def _accumulate(totals, values, weight):
    for key, value in values.items():
        s, w = totals.get(key, (0.0, 0))
        totals[key] = (s + value * weight, w + weight)


def _means(totals):
    return {key: s / w for key, (s, w) in totals.items()}
