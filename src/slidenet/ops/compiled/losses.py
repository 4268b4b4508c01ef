"""Compiled softmax cross-entropy from logits: the loss and the gradient in one pass over (N, K).

For each row z of the logits, with m = max(z), s = sum(exp(z - m)) and log p = z - m - log(s):
the row's loss is -sum(t log p) and its gradient row (p sum(t) - t) / N, as
:func:`slidenet.ops.losses.softmax_cross_entropy`. The sums are accumulated in float64 whatever
the dtype (so float32 results are at least as accurate as the NumPy path's). Serial: at the
sizes of a classifier's output (100 x 10) waking threads costs more than the work.
"""

from __future__ import annotations

import numpy as np

from slidenet.ops.compiled import jit


@jit
def bad_label(labels, k):
    """The index of the first label outside [-K, K) (NumPy's indexing range), or -1."""
    for i in range(labels.size):
        if not -k <= np.int64(labels[i]) < k:
            return i
    return -1


@jit
def softmax_ce_labels(logits, labels):
    """(loss, dlogits) for integer labels (N,) in [-K, K) (checked by the caller)."""
    n, k = logits.shape
    grad = np.empty_like(logits)
    e = np.empty(k)  # exp(z - max) of one row, in float64
    loss = 0.0
    for i in range(n):
        label = np.int64(labels[i])
        if label < 0:
            label += k  # NumPy indexing: -1 is the last class
        z = logits[i]
        top = z[0]
        for j in range(1, k):
            if z[j] > top:
                top = z[j]
        s = 0.0
        for j in range(k):
            e[j] = np.exp(z[j] - top)
            s += e[j]
        loss += np.log(s) - np.float64(z[label] - top)
        scale = 1.0 / s
        for j in range(k):
            grad[i, j] = e[j] * scale / n
        grad[i, label] = (e[label] * scale - 1.0) / n
    return loss / n, grad


@jit
def softmax_ce_rows(logits, targets):
    """(loss, dlogits) for target rows (N, K) of logits' dtype (one-hot or probabilities)."""
    n, k = logits.shape
    grad = np.empty_like(logits)
    e = np.empty(k)
    loss = 0.0
    for i in range(n):
        z = logits[i]
        t = targets[i]
        top = z[0]
        for j in range(1, k):
            if z[j] > top:
                top = z[j]
        s = 0.0
        t_sum = 0.0
        tz = 0.0
        for j in range(k):
            shifted = np.float64(z[j] - top)
            e[j] = np.exp(z[j] - top)
            s += e[j]
            t_sum += t[j]
            tz += t[j] * shifted
        loss += t_sum * np.log(s) - tz  # -sum_j t_j (shifted_j - log s)
        scale = t_sum / s
        for j in range(k):
            grad[i, j] = (e[j] * scale - t[j]) / n
    return loss / n, grad
