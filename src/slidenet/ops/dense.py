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
    db = column_sums(dy) if cache.has_bias else None
    return dx, dw, db


def column_sums(a: np.ndarray) -> np.ndarray:
    """a (R, K) -> (K,): the sum of every column, as ones (R,) @ a: a bias gradient.

    A matrix-vector product instead of ``a.sum(axis=0)``, which NumPy runs row by row: 10x faster
    on the tall, narrow gradients of convolutions (0.08 vs 0.93 ms for 78,400 x 6) and, summed in
    blocks, closer to the exact sum in float32.

    >>> column_sums(np.arange(6.0).reshape(3, 2))
    array([6., 9.])
    """
    if a.dtype not in (np.float32, np.float64):  # BLAS types only
        return a.sum(axis=0)
    return np.ones(a.shape[0], a.dtype) @ a


def dense(x, w, b=None):
    """y (N, units) = x (N, D_in) @ w (D_in, units) + b.

    >>> dense(np.array([[1.0, 2.0]]), np.array([[1.0], [1.0]]), np.array([0.5]))
    array([[3.5]])
    """
    return dense_forward(x, w, b)[0]
