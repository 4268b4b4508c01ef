"""Losses by Keras name. Each returns the batch mean and its gradient w.r.t. the model output.

When the last layer ends in softmax (or sigmoid) and the loss is categorical (or binary)
cross-entropy, the model uses the fused form on the logits: stable for any logits, and its gradient
(p - y) / N enters the backward pass below the activation.
"""

from __future__ import annotations

import numpy as np

from slidenet._validation import as_array, fmt_shape, unknown_name
from slidenet.ops import losses as L


class Loss:
    """Base class. ``loss(y_true, y_pred) -> float``; ``forward`` also returns d loss / d y_pred."""

    name = "loss"
    fused_activation: str | None = None

    def __init__(self, from_logits=False):
        self.from_logits = bool(from_logits)

    def __call__(self, y_true, y_pred) -> float:
        y_pred = _predictions(y_pred, self.name)
        return self.forward(self.check_targets(y_true, y_pred.shape, self.name), y_pred)[0]

    def forward(self, y_true, y_pred):
        """(mean loss, gradient w.r.t. y_pred); y_pred are logits when from_logits=True."""
        raise NotImplementedError

    def forward_logits(self, y_true, logits):
        """Fused form on the logits of the matching activation: (mean loss, dlogits)."""
        raise NotImplementedError

    def check_targets(self, y, out_shape, who):
        """Validate targets against the model output shape (N, ...) and return them as an array."""
        y = as_array(y, who, "y")
        if y.dtype.kind not in "biuf":
            raise TypeError(f"{who}: y has dtype {y.dtype}; expected numbers.")
        if y.dtype.kind == "f" and not np.isfinite(y).all():
            raise ValueError(f"{who}: y contains NaN or Inf.")
        return y

    def get_config(self):
        return {"from_logits": self.from_logits}


class SparseCategoricalCrossentropy(Loss):
    """Cross-entropy with integer labels y (N,) against class probabilities (N, K)."""

    name = "sparse_categorical_crossentropy"
    fused_activation = "softmax"

    def check_targets(self, y, out_shape, who):
        y = super().check_targets(y, out_shape, who)
        _two_axes(out_shape, who, self.name)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1:
            raise ValueError(
                f"{who}: sparse_categorical_crossentropy needs integer labels (N,), got y of shape "
                f"{fmt_shape(y.shape)}; for one-hot labels use loss='categorical_crossentropy'."
            )
        if y.dtype.kind == "f":
            if not np.all(y == np.round(y)):
                raise ValueError(f"{who}: labels must be whole numbers (class indices).")
        if len(y) != out_shape[0]:
            raise ValueError(
                f"{who}: {len(y)} labels for {out_shape[0]} predictions; they must match."
            )
        k = out_shape[-1]
        if y.size and (y.min() < 0 or y.max() >= k):
            raise ValueError(
                f"{who}: labels range over {int(y.min())}..{int(y.max())} but the last layer has "
                f"{k} units (classes 0..{k - 1}); use Dense({int(y.max()) + 1}) as the last layer "
                "or fix the labels."
            )
        return y.astype(np.int64)

    def forward(self, y_true, y_pred):
        if self.from_logits:
            return L.softmax_cross_entropy(y_pred, y_true)
        return L.cross_entropy(y_pred, y_true)

    def forward_logits(self, y_true, logits):
        return L.softmax_cross_entropy(logits, y_true)


class CategoricalCrossentropy(SparseCategoricalCrossentropy):
    """Cross-entropy with one-hot (or probability) targets y (N, K)."""

    name = "categorical_crossentropy"

    def check_targets(self, y, out_shape, who):
        y = Loss.check_targets(self, y, out_shape, who)
        _two_axes(out_shape, who, self.name)
        if y.shape != tuple(out_shape):
            raise ValueError(
                f"{who}: categorical_crossentropy needs one-hot targets (N, {out_shape[-1]}), got "
                f"{fmt_shape(y.shape)}; for integer labels use "
                "loss='sparse_categorical_crossentropy' or slidenet.utils.to_categorical(y)."
            )
        return y


class BinaryCrossentropy(Loss):
    """Binary cross-entropy of probabilities (N, 1) (or any shape) with 0/1 targets."""

    name = "binary_crossentropy"
    fused_activation = "sigmoid"

    def check_targets(self, y, out_shape, who):
        y = _one_target_per_output(super().check_targets(y, out_shape, who), out_shape, who, self)
        if y.size and (y.min() < 0 or y.max() > 1):
            raise ValueError(f"{who}: binary targets must lie in [0, 1].")
        return y

    def forward(self, y_true, y_pred):
        if self.from_logits:
            return L.sigmoid_binary_cross_entropy(y_pred, y_true)
        return L.binary_cross_entropy(y_pred, y_true)

    def forward_logits(self, y_true, logits):
        return L.sigmoid_binary_cross_entropy(logits, y_true)


class MeanSquaredError(Loss):
    """Mean of (y_pred - y_true)^2."""

    name = "mean_squared_error"

    def check_targets(self, y, out_shape, who):
        y = super().check_targets(y, out_shape, who)
        return _one_target_per_output(y, out_shape, who, self)

    def forward(self, y_true, y_pred):
        return L.mean_squared_error(y_pred, y_true)


def _predictions(y_pred, who) -> np.ndarray:
    """Predictions given to a loss function: a non-empty real array (N, ...), float32 at least."""
    y_pred = as_array(y_pred, who, "y_pred")
    if y_pred.dtype.kind not in "biuf":
        raise TypeError(f"{who}: y_pred has dtype {y_pred.dtype}; expected real numbers.")
    if y_pred.ndim == 0 or y_pred.size == 0:
        raise ValueError(
            f"{who}: y_pred {fmt_shape(y_pred.shape)} holds no predictions; give (N, ...) with "
            "N >= 1."
        )
    # float16 cannot hold the clip bound 1 - 1e-7 (it rounds to 1): compute in float32 at least
    return y_pred.astype(np.promote_types(y_pred.dtype, np.float32), copy=False)


def _two_axes(out_shape, who, name):
    if len(out_shape) != 2:
        who = who if who == name else f"{who}: {name}"
        raise ValueError(
            f"{who} needs predictions shaped (N, classes), got {fmt_shape(out_shape)}. "
            "End the model with Flatten() or a global pooling layer and Dense(classes)."
        )


def _one_target_per_output(y, out_shape, who, loss):
    """Targets with one value per model output, reshaped like the outputs (N, ...)."""
    if y.size != int(np.prod(out_shape)):
        raise ValueError(
            f"{who}: {loss.name} needs one target per output: outputs {fmt_shape(out_shape)}, "
            f"got y {fmt_shape(y.shape)}."
        )
    return y.reshape(out_shape)


_BY_NAME = {
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "binary_crossentropy": BinaryCrossentropy,
    "mean_squared_error": MeanSquaredError,
    "mse": MeanSquaredError,
}


def get(identifier) -> Loss:
    """A loss from a Keras name or a Loss instance."""
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Loss):
        return identifier()
    if isinstance(identifier, str):
        key = identifier.lower()
        if key in _BY_NAME:
            return _BY_NAME[key]()
        raise unknown_name("loss", identifier, _BY_NAME)
    raise TypeError(f"loss must be a name or a slidenet.losses.Loss, got {identifier!r}.")


def serialize(loss: Loss) -> dict:
    return {"class_name": loss.name, "config": loss.get_config()}


def deserialize(config: dict) -> Loss:
    name = config.get("class_name")
    if name not in _BY_NAME:
        raise unknown_name("loss", str(name), _BY_NAME)
    return _BY_NAME[name](**config.get("config", {}))


def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False):
    """Per-batch mean sparse categorical cross-entropy (functional form)."""
    return SparseCategoricalCrossentropy(from_logits)(y_true, y_pred)


def categorical_crossentropy(y_true, y_pred, from_logits=False):
    """Per-batch mean categorical cross-entropy (functional form)."""
    return CategoricalCrossentropy(from_logits)(y_true, y_pred)


def binary_crossentropy(y_true, y_pred, from_logits=False):
    """Per-batch mean binary cross-entropy (functional form)."""
    return BinaryCrossentropy(from_logits)(y_true, y_pred)


def mean_squared_error(y_true, y_pred):
    """Mean squared error (functional form)."""
    return MeanSquaredError()(y_true, y_pred)
