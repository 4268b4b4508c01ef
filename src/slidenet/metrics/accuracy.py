"""Accuracy functions (y_true, y_pred) -> fraction correct over the batch, and their
per-example forms (boolean hits) that the metric classes average with sample weights."""

from __future__ import annotations

import numpy as np

from slidenet._validation import as_array, fmt_shape


def _arrays(y_true, y_pred, who):
    """Both as real arrays; y_pred with at least one axis (a row of scores per example)."""
    y_true, y_pred = as_array(y_true, who, "y_true"), as_array(y_pred, who, "y_pred")
    for what, a in (("y_true", y_true), ("y_pred", y_pred)):
        if a.dtype.kind not in "biuf":
            raise TypeError(f"{who}: {what} has dtype {a.dtype}; expected real numbers.")
    if y_pred.ndim == 0:
        raise ValueError(f"{who}: y_pred must have a batch axis, got a scalar.")
    return y_true, y_pred


def _mean(hits) -> float:
    return float(np.mean(hits)) if hits.size else 0.0


def sparse_categorical_hits(y_true, y_pred, who="sparse_categorical_accuracy"):
    """Per row: whether its argmax equals the integer label."""
    y_true, y_pred = _arrays(y_true, y_pred, who)
    y_true = y_true.reshape(-1)
    if y_true.size != y_pred.size // max(y_pred.shape[-1], 1) or (y_pred.size == 0 and y_true.size):
        raise ValueError(
            f"{who}: {y_true.size} labels for predictions "
            f"{fmt_shape(y_pred.shape)}; give one label per row."
        )
    if not y_true.size:
        return np.zeros(0, bool)
    return np.argmax(y_pred, axis=-1).reshape(-1) == y_true


def categorical_hits(y_true, y_pred, who="categorical_accuracy"):
    """Per row: whether its argmax matches the one-hot target's argmax."""
    y_true, y_pred = _arrays(y_true, y_pred, who)
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"{who}: targets {fmt_shape(y_true.shape)} and predictions "
            f"{fmt_shape(y_pred.shape)} must have the same shape (one-hot targets)."
        )
    if y_pred.size == 0:
        return np.zeros(y_pred.shape[:-1], bool)
    return np.argmax(y_pred, -1) == np.argmax(y_true, -1)


def binary_hits(y_true, y_pred, threshold=0.5, who="binary_accuracy"):
    """Per output: whether it lies on the right side of ``threshold``."""
    y_true, y_pred = _arrays(y_true, y_pred, who)
    if y_true.size != y_pred.size:
        raise ValueError(
            f"{who}: {y_true.size} targets for {y_pred.size} predictions "
            f"{fmt_shape(y_pred.shape)}; give one target per output."
        )
    return (y_pred > threshold) == (y_true.reshape(y_pred.shape) > 0.5)


def _check_k(k, who) -> int:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"{who}: k must be a positive integer, got {k!r}.")
    return int(k)


def sparse_top_k_hits(y_true, y_pred, k=5, who="sparse_top_k_categorical_accuracy"):
    """Per row: whether the label's score is among the ``k`` largest. Ties count in the label's
    favour (its rank is 1 + the number of strictly larger scores), as Keras' ``in_top_k``."""
    k = _check_k(k, who)
    y_true, y_pred = _arrays(y_true, y_pred, who)
    if y_pred.ndim != 2:
        raise ValueError(f"{who}: y_pred must be (N, classes), got {fmt_shape(y_pred.shape)}.")
    labels = y_true.reshape(-1)
    if labels.size != len(y_pred):
        raise ValueError(
            f"{who}: {labels.size} labels for {len(y_pred)} rows of predictions; give one "
            "integer label per row."
        )
    if labels.size and (labels.min() < 0 or labels.max() >= y_pred.shape[1]):
        raise ValueError(f"{who}: labels must lie in 0..{y_pred.shape[1] - 1}.")
    at_label = np.take_along_axis(y_pred, labels.astype(np.int64)[:, None], axis=1)
    at_label = np.where(np.isnan(at_label), -np.inf, at_label)  # NaN is no high score
    return 1 + np.sum(y_pred > at_label, axis=1) <= k


def top_k_hits(y_true, y_pred, k=5, who="top_k_categorical_accuracy"):
    """Per row: whether the one-hot target's class is among the ``k`` largest scores."""
    y_true, y_pred = _arrays(y_true, y_pred, who)
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"{who}: targets {fmt_shape(y_true.shape)} and predictions "
            f"{fmt_shape(y_pred.shape)} must have the same shape (one-hot targets)."
        )
    return sparse_top_k_hits(np.argmax(y_true, axis=-1), y_pred, k, who)


def sparse_categorical_accuracy(y_true, y_pred) -> float:
    """Fraction of rows whose argmax equals the integer label."""
    return _mean(sparse_categorical_hits(y_true, y_pred))


def categorical_accuracy(y_true, y_pred) -> float:
    """Fraction of rows whose argmax matches the one-hot target's argmax."""
    return _mean(categorical_hits(y_true, y_pred))


def binary_accuracy(y_true, y_pred, threshold=0.5) -> float:
    """Fraction of outputs on the right side of ``threshold``."""
    return _mean(binary_hits(y_true, y_pred, threshold))


def sparse_top_k_categorical_accuracy(y_true, y_pred, k=5) -> float:
    """Fraction of rows whose integer label is among the ``k`` highest scores."""
    return _mean(sparse_top_k_hits(y_true, y_pred, k))


def top_k_categorical_accuracy(y_true, y_pred, k=5) -> float:
    """Fraction of rows whose one-hot target's class is among the ``k`` highest scores."""
    return _mean(top_k_hits(y_true, y_pred, k))


def _sparse_or_categorical_accuracy(y_true, y_pred) -> float:
    """Categorical accuracy for targets shaped like the outputs (one-hot), else sparse (Keras)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.ndim == y_pred.ndim and y_true.shape[-1] == y_pred.shape[-1]:
        return categorical_accuracy(y_true, y_pred)
    return sparse_categorical_accuracy(y_true, y_pred)
