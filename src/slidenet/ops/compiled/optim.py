"""Compiled optimizer updates: one pass per weight array, in place.

Each kernel takes flat, C-contiguous arrays of one dtype (the weight, its gradient, its state) and
the step's constants already rounded to that dtype, and performs the NumPy update's operations
element by element in the same order and the same precision (no fused multiply-adds, no
reassociation), so the weights and the state come out bit for bit as from the NumPy path
(tests/ops/test_compiled_optim.py). Only the memory traffic changes: every array is read and
written once instead of once per NumPy operation, and no temporaries are made.

With ``decayed`` True, the base class's decoupled weight decay ``w -= w * decay`` is done in the
same pass, before the update (the NumPy path does it for all weights first; the weights do not
depend on each other, so the numbers are the same).
"""

from __future__ import annotations

import numba
import numpy as np

from slidenet.ops.compiled import jit


@jit(parallel=True)
def adam(w, g, m, v, lr_t, c1, c2, eps, decay, decayed):
    """m += (g - m) c1;  v += (g g - v) c2;  w -= (m / (sqrt(v) + eps)) lr_t."""
    for i in numba.prange(w.size):
        wi = w[i]
        if decayed:
            wi = wi - wi * decay
        gi = g[i]
        mi = m[i] + (gi - m[i]) * c1
        vi = v[i] + (gi * gi - v[i]) * c2
        m[i] = mi
        v[i] = vi
        w[i] = wi - (mi / (np.sqrt(vi) + eps)) * lr_t


@jit(parallel=True)
def adam_amsgrad(w, g, m, v, v_hat, lr_t, c1, c2, eps, decay, decayed):
    """Adam with v_hat = max(v_hat, v):  w -= lr_t m / (sqrt(v_hat) + eps)."""
    for i in numba.prange(w.size):
        wi = w[i]
        if decayed:
            wi = wi - wi * decay
        gi = g[i]
        mi = m[i] + (gi - m[i]) * c1
        vi = v[i] + (gi * gi - v[i]) * c2
        vh = v_hat[i]
        if not vh >= vi:  # np.maximum: NaN wins
            if vh == vh:
                vh = vi
        m[i] = mi
        v[i] = vi
        v_hat[i] = vh
        w[i] = wi - lr_t * mi / (np.sqrt(vh) + eps)


@jit(parallel=True)
def sgd(w, g, lr, decay, decayed):
    """w -= lr g."""
    for i in numba.prange(w.size):
        wi = w[i]
        if decayed:
            wi = wi - wi * decay
        w[i] = wi - lr * g[i]


@jit(parallel=True)
def sgd_momentum(w, g, velocity, lr, mu, nesterov, decay, decayed):
    """v = v mu - lr g;  w += v, or w += (mu v - lr g) with Nesterov momentum."""
    for i in numba.prange(w.size):
        wi = w[i]
        if decayed:
            wi = wi - wi * decay
        step = lr * g[i]
        vi = velocity[i] * mu - step
        velocity[i] = vi
        if nesterov:
            w[i] = wi + (mu * vi - step)
        else:
            w[i] = wi + vi


@jit(parallel=True)
def rmsprop(w, g, v, p, a, lr, c, mu, eps, momentum, centered, decay, decayed):
    """v += c (g g - v); d = lr g / sqrt(v + eps) (centered: a += c (g - a) and
    sqrt(v - a a + eps)); w -= d, or with momentum p = p mu + d, w -= p. (p and a are only
    touched when momentum / centered are True.)"""
    for i in numba.prange(w.size):
        wi = w[i]
        if decayed:
            wi = wi - wi * decay
        gi = g[i]
        vi = v[i] + c * (gi * gi - v[i])
        v[i] = vi
        if centered:
            ai = a[i] + c * (gi - a[i])
            a[i] = ai
            step = lr * gi / np.sqrt(vi - ai * ai + eps)
        else:
            step = lr * gi / np.sqrt(vi + eps)
        if momentum:
            step = p[i] * mu + step
            p[i] = step
        w[i] = wi - step


@jit(parallel=True)
def adagrad(w, g, accumulator, lr, eps, decay, decayed):
    """G += g g;  w -= lr g / sqrt(G + eps)."""
    for i in numba.prange(w.size):
        wi = w[i]
        if decayed:
            wi = wi - wi * decay
        gi = g[i]
        acc = accumulator[i] + gi * gi
        accumulator[i] = acc
        w[i] = wi - lr * gi / np.sqrt(acc + eps)
