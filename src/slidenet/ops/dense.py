"""Fully connected (dense) layer: every output unit is a dot product with every input plus a bias.

y = x @ w + b,    x (N, D_in), w (D_in, units), b (units,)
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from slidenet._validation import fmt_shape


class DenseCache(NamedTuple):
    """The input (for dw) and the kernel (for dx)."""

    x: np.ndarray
    w: np.ndarray
    has_bias: bool


def dense_forward(x, w, b=None):
    """y (N, units) = x (N, D_in) @ w (D_in, units) + b (units,); returns (y, cache)."""
    if x.ndim != 2 or w.ndim != 2 or x.shape[1] != w.shape[0]:
        raise ValueError(
            f"dense: x {fmt_shape(x.shape)} and w {fmt_shape(w.shape)} do not chain; expected "
            "x (N, D_in) and w (D_in, units). Flatten image inputs first."
        )
    y = x @ w.astype(x.dtype, copy=False)
    if b is not None:
        y += b.astype(x.dtype, copy=False)
    return y, DenseCache(x, w, b is not None)


def dense_backward(dy, cache: DenseCache):
    """Gradients of :func:`dense_forward`: dx (N, D_in), dw (D_in, units), db (units,) or None."""
    dx = dy @ cache.w.T.astype(dy.dtype, copy=False)
    dw = cache.x.T @ dy
    db = dy.sum(axis=0) if cache.has_bias else None
    return dx, dw, db


def dense(x, w, b=None):
    """y (N, units) = x (N, D_in) @ w (D_in, units) + b.

    >>> dense(np.array([[1.0, 2.0]]), np.array([[1.0], [1.0]]), np.array([0.5]))
    array([[3.5]])
    """
    return dense_forward(x, w, b)[0]
