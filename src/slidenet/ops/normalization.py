"""Normalisation: batch, layer and group norm, each with its hand-written backward.

Each standardises x over some axes with the mean and the (biased) variance over them,
    xhat = (x - mu) / sqrt(var + eps),   y = gamma * xhat + beta,
and they differ in the axes:

- batch norm: every axis but the last (the channels, NHWC), so the batch is mixed. Inference uses
  running averages instead (kept by the layer, Keras' convention: running = momentum * running +
  (1 - momentum) * batch statistic).
- layer norm: the axes named (the last by default), per example; gamma and beta have the shape
  of those axes.
- group norm: per example and per group of C / G neighbouring channels, over the group's channels
  and every other axis but the batch (torch's group_norm on NCHW: (C / G, H, W)); gamma and beta
  are per channel (C,).

The backward of the standardisation over axes A, with m the number of values it averages:
    dx = inv_std * (dxhat - mean_A(dxhat) - xhat * mean_A(dxhat * xhat)),   dxhat = dy * gamma.

With the compiled kernels (:mod:`slidenet.ops.kernels`) batch norm's training forward and backward
run as three and two passes over x (``slidenet/ops/compiled/normalization.py``); the NumPy code
below is the reference.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from slidenet.ops import kernels


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
    c = x.shape[-1] if x.ndim else 0
    if kernels.compiled() and _compiled_ok(x) and np.shape(gamma) == np.shape(beta) == (c,):
        from slidenet.ops.compiled import normalization as compiled

        y, xhat = np.empty_like(x), np.empty_like(x)
        mean, var, inv_std = compiled.batchnorm_forward(
            x.reshape(-1, c),
            np.ascontiguousarray(gamma, x.dtype),
            np.ascontiguousarray(beta, x.dtype),
            float(eps),
            y.reshape(-1, c),
            xhat.reshape(-1, c),
        )
        return y, (mean, var), BatchNormCache(xhat, inv_std, gamma)
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
    c = dy.shape[-1] if dy.ndim else 0
    if (
        kernels.compiled()
        and _compiled_ok(dy, cache.xhat)
        and cache.xhat.shape == dy.shape
        and np.shape(cache.inv_std) == np.shape(cache.gamma) == (c,)
    ):
        from slidenet.ops.compiled import normalization as compiled

        dx = np.empty_like(dy)
        dgamma, dbeta = compiled.batchnorm_backward(
            dy.reshape(-1, c),
            cache.xhat.reshape(-1, c),
            np.ascontiguousarray(cache.inv_std, dy.dtype),
            np.ascontiguousarray(cache.gamma, dy.dtype),
            dx.reshape(-1, c),
        )
        return dx, dgamma, dbeta
    axes = tuple(range(dy.ndim - 1))
    m = dy.size // dy.shape[-1]
    dbeta = dy.sum(axis=axes)
    dgamma = (dy * cache.xhat).sum(axis=axes)
    dxhat = dy * cache.gamma.astype(dy.dtype, copy=False)
    dx = (cache.inv_std / m) * (
        m * dxhat - dxhat.sum(axis=axes) - cache.xhat * (dxhat * cache.xhat).sum(axis=axes)
    )
    return dx.astype(dy.dtype, copy=False), dgamma, dbeta


def _compiled_ok(*arrays) -> bool:
    """Can the compiled batch norm take these arrays: C-contiguous, non-empty, at least 2-D,
    all float32 or all float64?"""
    first = arrays[0]
    return (
        first.dtype in (np.float32, np.float64)
        and first.ndim >= 2
        and first.size > 0
        and all(a.dtype == first.dtype and a.flags.c_contiguous for a in arrays)
    )


# ----------------------------------------------------------------------- layer and group norm


def _standardize(x, axes, eps):
    """(xhat, inv_std): x standardised over ``axes`` (inv_std keeps those axes as size 1)."""
    xc = x - x.mean(axis=axes, keepdims=True)
    inv_std = 1 / np.sqrt((xc * xc).mean(axis=axes, keepdims=True) + x.dtype.type(eps))
    return xc * inv_std, inv_std


def _standardize_backward(dxhat, xhat, inv_std, axes):
    mean = dxhat.mean(axis=axes, keepdims=True)
    return inv_std * (dxhat - mean - xhat * (dxhat * xhat).mean(axis=axes, keepdims=True))


def _axes(axis, ndim: int) -> tuple[int, ...]:
    """``axis`` (an int or a sequence of ints, negative counting from the end) as sorted
    non-negative axes of an array with ``ndim`` axes."""
    items = [axis] if isinstance(axis, int | np.integer) else list(axis)
    if not items or any(not -ndim <= int(a) < ndim for a in items):
        raise ValueError(f"axis {axis!r} is out of range for an array with {ndim} axes.")
    axes = sorted({int(a) % ndim for a in items})
    if len(axes) != len(items):
        raise ValueError(f"axis {axis!r} names an axis twice.")
    return tuple(axes)


class LayerNormCache(NamedTuple):
    """Normalised input, inverse standard deviations, the axes, gamma as broadcast (or None)
    and whether there is a beta."""

    xhat: np.ndarray
    inv_std: np.ndarray
    axes: tuple
    gamma: np.ndarray | None
    has_beta: bool


def layernorm_forward(x, gamma=None, beta=None, axis=-1, eps=1e-3):
    """Layer norm of x over ``axis`` (an int or a tuple of ints), separately for each position of
    the other axes.

    Args:
        x: (N, ...), e.g. (N, H, W, C).
        gamma, beta: None, or shaped like the normalised axes in order (Keras: axis=-1 gives (C,),
            axis=(1, 2, 3) gives (H, W, C)).
        axis: the axes of x to normalise over. eps: added to the variance.

    Returns:
        y (shape of x) and a LayerNormCache.
    """
    axes = _axes(axis, x.ndim)
    xhat, inv_std = _standardize(x, axes, eps)
    bshape = tuple(n if i in axes else 1 for i, n in enumerate(x.shape))
    g = None if gamma is None else np.reshape(gamma, bshape).astype(x.dtype, copy=False)
    y = xhat if g is None else xhat * g
    if beta is not None:
        y = y + np.reshape(beta, bshape).astype(x.dtype, copy=False)
    return y, LayerNormCache(xhat, inv_std, axes, g, beta is not None)


def layernorm_backward(dy, cache: LayerNormCache):
    """(dx, dgamma, dbeta) of :func:`layernorm_forward`; dgamma / dbeta are None when gamma /
    beta were, and shaped like them otherwise (summed over the axes not normalised)."""
    axes = cache.axes
    rest = tuple(i for i in range(dy.ndim) if i not in axes)
    pshape = tuple(dy.shape[i] for i in axes)
    dgamma = dbeta = None
    if cache.gamma is not None:
        dgamma = (dy * cache.xhat).sum(axis=rest).reshape(pshape)
    if cache.has_beta:
        dbeta = dy.sum(axis=rest).reshape(pshape)
    dxhat = dy if cache.gamma is None else dy * cache.gamma
    dx = _standardize_backward(dxhat, cache.xhat, cache.inv_std, axes)
    return dx.astype(dy.dtype, copy=False), dgamma, dbeta


class GroupNormCache(NamedTuple):
    """Normalised input grouped as (N, ..., G, C / G) with the channels last, inverse standard
    deviations, the reduced axes, gamma (or None), whether there is a beta, the channel axis."""

    xhat: np.ndarray
    inv_std: np.ndarray
    axes: tuple
    gamma: np.ndarray | None
    has_beta: bool
    axis: int


def groupnorm_forward(x, gamma=None, beta=None, groups=32, axis=-1, eps=1e-3):
    """Group norm of x (N, ..., C, ...) with ``groups`` groups of C / G neighbouring channels
    (channel axis ``axis``).

    Each example and group is standardised over the group's channels and all other non-batch
    axes: (H, W, C / G) for NHWC input, as torch's group_norm does (C / G, H, W) on NCHW. gamma and
    beta are None or (C,). Returns y (shape of x) and a GroupNormCache.
    """
    (axis,) = _axes(axis, x.ndim)
    c = x.shape[axis]
    if axis == 0 or groups < 1 or c % groups:
        raise ValueError(
            f"group norm needs a channel axis other than the batch axis and a number of groups "
            f"that divides its size: got axis={axis} of size {c} and groups={groups}"
            + (f" ({c} % {groups} = {c % groups})." if groups >= 1 else ".")
        )
    xm = np.moveaxis(x, axis, -1)
    xg = xm.reshape(*xm.shape[:-1], groups, c // groups)
    axes = (*range(1, xg.ndim - 2), xg.ndim - 1)
    xhat_g, inv_std = _standardize(xg, axes, eps)
    y = xhat_g.reshape(xm.shape)
    g = None if gamma is None else np.asarray(gamma).astype(x.dtype, copy=False)
    if g is not None:
        y = y * g
    if beta is not None:
        y = y + np.asarray(beta).astype(x.dtype, copy=False)
    y = np.ascontiguousarray(np.moveaxis(y, -1, axis))
    return y, GroupNormCache(xhat_g, inv_std, axes, g, beta is not None, axis)


def groupnorm_backward(dy, cache: GroupNormCache):
    """(dx, dgamma, dbeta) of :func:`groupnorm_forward`; dgamma / dbeta (C,), or None when gamma
    / beta were None."""
    dym = np.moveaxis(dy, cache.axis, -1)
    xhat = cache.xhat.reshape(dym.shape)
    rest = tuple(range(dym.ndim - 1))
    dgamma = None if cache.gamma is None else (dym * xhat).sum(axis=rest)
    dbeta = dym.sum(axis=rest) if cache.has_beta else None
    dxhat = dym if cache.gamma is None else dym * cache.gamma
    dxg = _standardize_backward(
        dxhat.reshape(cache.xhat.shape), cache.xhat, cache.inv_std, cache.axes
    )
    dx = np.ascontiguousarray(np.moveaxis(dxg.reshape(dym.shape), -1, cache.axis))
    return dx.astype(dy.dtype, copy=False), dgamma, dbeta


def layernorm(x, gamma=None, beta=None, axis=-1, eps=1e-3):
    """Layer norm of x over ``axis`` (see :func:`layernorm_forward`)."""
    return layernorm_forward(x, gamma, beta, axis, eps)[0]


def groupnorm(x, gamma=None, beta=None, groups=32, axis=-1, eps=1e-3):
    """Group norm of x with ``groups`` groups along ``axis`` (see :func:`groupnorm_forward`)."""
    return groupnorm_forward(x, gamma, beta, groups, axis, eps)[0]
