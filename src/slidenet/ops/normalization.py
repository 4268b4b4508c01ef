"""Batch normalisation over every axis but the last (the channels, NHWC).

Training: each channel is standardised with the batch's mean and (biased) variance,
    xhat = (x - mu) / sqrt(var + eps),   y = gamma * xhat + beta.
Inference uses running averages instead (kept by the layer, Keras' convention:
running = momentum * running + (1 - momentum) * batch statistic).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class BatchNormCache(NamedTuple):
    """Normalised input, inverse standard deviation and gamma."""

    xhat: np.ndarray
    inv_std: np.ndarray  # (D,)
    gamma: np.ndarray  # (D,)


def batchnorm_forward(x, gamma, beta, eps=1e-3):
    """Training-mode batch norm of x (N, ..., D) with gamma, beta (D,).

    Returns:
        y (same shape as x), (mean (D,), var (D,)) of the batch, and the cache.
    """
    axes = tuple(range(x.ndim - 1))
    mean = x.mean(axis=axes)
    var = x.var(axis=axes)
    inv_std = 1 / np.sqrt(var + x.dtype.type(eps))
    xhat = (x - mean) * inv_std
    y = xhat * gamma.astype(x.dtype, copy=False) + beta.astype(x.dtype, copy=False)
    return y, (mean, var), BatchNormCache(xhat, inv_std, gamma)


def batchnorm_inference(x, gamma, beta, mean, var, eps=1e-3):
    """Inference-mode batch norm with fixed statistics: y = gamma (x - mean) / sqrt(var + eps) +
    beta.
    """
    scale = (gamma / np.sqrt(var + eps)).astype(x.dtype, copy=False)
    return x * scale + (beta - mean * scale).astype(x.dtype, copy=False)


def batchnorm_backward(dy, cache: BatchNormCache):
    """Gradients of :func:`batchnorm_forward`: dx (shape of x), dgamma (D,), dbeta (D,).

    With m the number of elements per channel:
    dx = inv_std / m * (m * dxhat - sum(dxhat) - xhat * sum(dxhat * xhat)), dxhat = dy * gamma.
    """
    axes = tuple(range(dy.ndim - 1))
    m = dy.size // dy.shape[-1]
    dbeta = dy.sum(axis=axes)
    dgamma = (dy * cache.xhat).sum(axis=axes)
    dxhat = dy * cache.gamma.astype(dy.dtype, copy=False)
    dx = (cache.inv_std / m) * (
        m * dxhat - dxhat.sum(axis=axes) - cache.xhat * (dxhat * cache.xhat).sum(axis=axes)
    )
    return dx.astype(dy.dtype, copy=False), dgamma, dbeta
