"""Metrics, each a function (y_true, y_pred) -> fraction correct over the batch.

"accuracy" resolves like Keras: integer labels against (N, K) outputs -> sparse categorical
accuracy; one-hot targets -> categorical accuracy; one output unit -> binary accuracy (threshold
0.5).
"""

from __future__ import annotations

import numpy as np

from slidenet._validation import as_array, fmt_shape, unknown_name


def _arrays(y_true, y_pred, who):
    """Both as real arrays; y_pred with at least one axis (a row of scores per example)."""
    y_true, y_pred = as_array(y_true, who, "y_true"), as_array(y_pred, who, "y_pred")
    for what, a in (("y_true", y_true), ("y_pred", y_pred)):
        if a.dtype.kind not in "biuf":
            raise TypeError(f"{who}: {what} has dtype {a.dtype}; expected real numbers.")
    if y_pred.ndim == 0:
        raise ValueError(f"{who}: y_pred must have a batch axis, got a scalar.")
    return y_true, y_pred


def sparse_categorical_accuracy(y_true, y_pred) -> float:
    """Fraction of rows whose argmax equals the integer label."""
    y_true, y_pred = _arrays(y_true, y_pred, "sparse_categorical_accuracy")
    y_true = y_true.reshape(-1)
    if y_true.size != y_pred.size // max(y_pred.shape[-1], 1) or (y_pred.size == 0 and y_true.size):
        raise ValueError(
            f"sparse_categorical_accuracy: {y_true.size} labels for predictions "
            f"{fmt_shape(y_pred.shape)}; give one label per row."
        )
    return float(np.mean(np.argmax(y_pred, axis=-1).reshape(-1) == y_true)) if y_true.size else 0.0


def categorical_accuracy(y_true, y_pred) -> float:
    """Fraction of rows whose argmax matches the one-hot target's argmax."""
    y_true, y_pred = _arrays(y_true, y_pred, "categorical_accuracy")
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"categorical_accuracy: targets {fmt_shape(y_true.shape)} and predictions "
            f"{fmt_shape(y_pred.shape)} must have the same shape (one-hot targets)."
        )
    if y_pred.size == 0:
        return 0.0
    return float(np.mean(np.argmax(y_pred, -1) == np.argmax(y_true, -1)))


def binary_accuracy(y_true, y_pred, threshold=0.5) -> float:
    """Fraction of outputs on the right side of ``threshold``."""
    y_true, y_pred = _arrays(y_true, y_pred, "binary_accuracy")
    if y_true.size != y_pred.size:
        raise ValueError(
            f"binary_accuracy: {y_true.size} targets for {y_pred.size} predictions "
            f"{fmt_shape(y_pred.shape)}; give one target per output."
        )
    y_true = y_true.reshape(y_pred.shape)
    return float(np.mean((y_pred > threshold) == (y_true > 0.5))) if y_pred.size else 0.0


def _sparse_or_categorical_accuracy(y_true, y_pred) -> float:
    """Categorical accuracy for targets shaped like the outputs (one-hot), else sparse (Keras)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.ndim == y_pred.ndim and y_true.shape[-1] == y_pred.shape[-1]:
        return categorical_accuracy(y_true, y_pred)
    return sparse_categorical_accuracy(y_true, y_pred)


_BY_NAME = {
    "sparse_categorical_accuracy": sparse_categorical_accuracy,
    "categorical_accuracy": categorical_accuracy,
    "binary_accuracy": binary_accuracy,
    "accuracy": None,
    "acc": None,
}


def resolve(name, loss_name: str, output_shape) -> tuple[str, callable]:
    """(log name, function) for a metric identifier; 'accuracy' picks the right variant."""
    if callable(name):
        return name.__name__, name
    if not isinstance(name, str):
        raise TypeError(f"metrics must be names or functions, got {name!r}.")
    key = name.lower()
    if key not in _BY_NAME:
        raise unknown_name("metric", name, _BY_NAME)
    if key in ("accuracy", "acc"):
        if loss_name == "binary_crossentropy" or output_shape[-1] == 1:
            fn = binary_accuracy
        elif loss_name == "categorical_crossentropy":
            fn = categorical_accuracy
        elif loss_name == "sparse_categorical_crossentropy":
            fn = sparse_categorical_accuracy
        else:  # e.g. mean_squared_error: integer labels or one-hot targets, decided by their shape
            fn = _sparse_or_categorical_accuracy
        return key, fn  # logged under the name given, as Keras 3 does ("acc" or "accuracy")
    return key, _BY_NAME[key]
