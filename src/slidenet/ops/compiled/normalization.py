"""Compiled batch normalisation over the rows of x viewed as (M, C), channels last.

The NumPy path (:mod:`slidenet.ops.normalization`) makes about ten passes over x with as many
temporaries; these kernels make three (forward: sum, sum of squared deviations, normalise) and two
(backward: the two channel sums, then dx). The rows are cut into blocks of a fixed size that run
in parallel; each block keeps its own float64 channel sums, added up in block order afterwards,
so the results do not depend on the number of threads. The statistics are two-pass float64
ones (at least as accurate as NumPy's float32 sums); the elementwise forward pass is the NumPy
path's arithmetic in x's dtype, and the backward pass computes in float64 and rounds once.
"""

from __future__ import annotations

import numba
import numpy as np

from slidenet.ops.compiled import jit

BLOCK = 256  # rows per parallel block (a fixed size: block sums do not depend on the threads)


@jit
def _blocks(m):
    return (m + BLOCK - 1) // BLOCK


@jit(parallel=True)
def _sums(x):
    """Per channel, sum(x) over the rows in float64, in a fixed order: by blocks, then over the
    blocks."""
    m, c = x.shape
    nb = _blocks(m)
    partial = np.zeros((nb, c))
    for b in numba.prange(nb):
        acc = partial[b]
        for r in range(b * BLOCK, min(m, (b + 1) * BLOCK)):
            for j in range(c):
                acc[j] += x[r, j]
    total = np.zeros(c)
    for b in range(nb):
        for j in range(c):
            total[j] += partial[b, j]
    return total


@jit(parallel=True)
def _squared_deviations(x, mean):
    m, c = x.shape
    nb = _blocks(m)
    partial = np.zeros((nb, c))
    for b in numba.prange(nb):
        acc = partial[b]
        for r in range(b * BLOCK, min(m, (b + 1) * BLOCK)):
            for j in range(c):
                d = np.float64(x[r, j]) - mean[j]
                acc[j] += d * d
    total = np.zeros(c)
    for b in range(nb):
        for j in range(c):
            total[j] += partial[b, j]
    return total


@jit(parallel=True)
def batchnorm_forward(x, gamma, beta, eps, y, xhat):
    """Training-mode batch norm of x (M, C) (M > 0) with gamma, beta (C,) of x's dtype.

    Writes y and xhat (M, C), and returns mean, var, inv_std (C,), all in x's dtype, with
    inv_std = 1 / sqrt(var + eps), xhat = (x - mean) * inv_std, y = xhat * gamma + beta. (The
    large outputs come from the caller: arrays allocated by NumPy were faster to fill here than
    Numba's own, which page-faulted afresh on every call for float64 sizes of 20 MB.)
    """
    m, c = x.shape
    mean64 = _sums(x) / m
    var64 = _squared_deviations(x, mean64) / m
    mean = np.empty(c, x.dtype)
    var = np.empty(c, x.dtype)
    inv_std = np.empty(c, x.dtype)
    for j in range(c):
        mean[j] = mean64[j]
        var[j] = var64[j]
        inv_std[j] = 1.0 / np.sqrt(var64[j] + eps)
    nb = _blocks(m)
    for b in numba.prange(nb):
        for r in range(b * BLOCK, min(m, (b + 1) * BLOCK)):
            for j in range(c):
                h = (x[r, j] - mean[j]) * inv_std[j]
                xhat[r, j] = h
                y[r, j] = h * gamma[j] + beta[j]
    return mean, var, inv_std


@jit(parallel=True)
def _grad_sums(dy, xhat):
    """Per channel, (sum dy, sum dy * xhat) in float64, by blocks as above."""
    m, c = dy.shape
    nb = _blocks(m)
    partial = np.zeros((nb, 2, c))
    for b in numba.prange(nb):
        s1 = partial[b, 0]
        s2 = partial[b, 1]
        for r in range(b * BLOCK, min(m, (b + 1) * BLOCK)):
            for j in range(c):
                d = np.float64(dy[r, j])
                s1[j] += d
                s2[j] += d * xhat[r, j]
    dbeta = np.zeros(c)
    dgamma = np.zeros(c)
    for b in range(nb):
        for j in range(c):
            dbeta[j] += partial[b, 0, j]
            dgamma[j] += partial[b, 1, j]
    return dbeta, dgamma


@jit(parallel=True)
def batchnorm_backward(dy, xhat, inv_std, gamma, dx):
    """Writes dx (M, C) and returns (dgamma, dbeta) (C,), in dy's dtype; inv_std and gamma (C,).
    With
    dxhat = dy gamma, sum(dxhat) = gamma dbeta and sum(dxhat xhat) = gamma dgamma, so
        dx = inv_std gamma / m * (m dy - dbeta - xhat dgamma)."""
    m, c = dy.shape
    dbeta64, dgamma64 = _grad_sums(dy, xhat)
    scale = np.empty(c)
    for j in range(c):
        scale[j] = np.float64(inv_std[j]) * np.float64(gamma[j]) / m
    nb = _blocks(m)
    for b in numba.prange(nb):
        for r in range(b * BLOCK, min(m, (b + 1) * BLOCK)):
            for j in range(c):
                dx[r, j] = scale[j] * (
                    m * np.float64(dy[r, j]) - dbeta64[j] - np.float64(xhat[r, j]) * dgamma64[j]
                )
    dgamma = np.empty(c, dy.dtype)
    dbeta = np.empty(c, dy.dtype)
    for j in range(c):
        dgamma[j] = dgamma64[j]
        dbeta[j] = dbeta64[j]
    return dgamma, dbeta
