"""3D pooling of volumes x (N, Z, H, W, D): the max or mean of each pz x ph x pw window.

As in 2D (:mod:`slidenet.ops.pool`): strides default to the pool size; padding='same' keeps
ceil(n / s) outputs per axis by pooling the partial windows at the border, as Keras does: max
ignores the padding and average divides by the number of real cells in the window (PyTorch's
``count_include_pad=False``). The work is one strided slice per window offset, pz*ph*pw array
operations whatever the volume's size. Global 3D pooling is :func:`slidenet.ops.global_max_pool`
/ :func:`~slidenet.ops.global_avg_pool`, which reduce any number of spatial axes.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from slidenet._validation import fmt_shape, int_tuple
from slidenet.ops.checked import _sliding
from slidenet.ops.conv3d import crop_nd, tap_slices
from slidenet.ops.im2col import pad_spatial
from slidenet.ops.shapes import output_length, same_pads

KINDS = ("max", "avg")


class Pool3DCache(NamedTuple):
    """Geometry of a 3D pooling call, and what its backward needs."""

    kind: str  # 'max' | 'avg'
    xp_shape: tuple  # (N, Zp, Hp, Wp, D)
    pads: tuple
    pool: tuple
    strides: tuple
    out: tuple  # (Zo, Ho, Wo)
    xp: np.ndarray | None  # padded input (-inf borders), for 'max'
    y: np.ndarray | None  # output, for 'max'
    counts: np.ndarray | None  # (1, Zo, Ho, Wo, 1) real cells per window, for 'avg'


def pool3d_geometry(x_shape, pool_size=2, stride=None, padding="valid", who="pool3d"):
    """Check a pooling window against an input; return (pads, pool, strides, (Zo, Ho, Wo)).

    Args:
        x_shape: (N, Z, H, W, D) or (Z, H, W, D). pool_size: int or (pz, ph, pw).
        stride: int, triple or None (= pool_size). padding: 'valid' or 'same'.
    """
    sizes = tuple(x_shape[-4:-1])
    pool = int_tuple(pool_size, 3, f"{who}: pool_size")
    strides = pool if stride is None else int_tuple(stride, 3, f"{who}: strides")
    mode = padding.lower() if isinstance(padding, str) else padding
    if mode == "valid":
        pads = ((0, 0),) * 3
    elif mode == "same":
        pads = tuple(same_pads(n, p, s) for n, p, s in zip(sizes, pool, strides, strict=True))
    else:
        raise ValueError(f"{who}: padding must be 'valid' or 'same', got {padding!r}.")
    out = tuple(
        output_length(n, p, s, pad) for n, p, s, pad in zip(sizes, pool, strides, pads, strict=True)
    )
    if min(out) < 1:
        window, volume = "x".join(map(str, pool)), "x".join(map(str, sizes))
        raise ValueError(
            f"{who}: pool window {window} does not fit input {volume} (Z x H x W) with "
            f"padding={padding!r}. Use padding='same' or pool_size of at most {volume}."
        )
    return pads, pool, strides, out


def pool3d_forward(x, pool_size=2, stride=None, padding="valid", kind="max"):
    """Max or average pooling of x (N, Z, H, W, D) -> y (N, Zo, Ho, Wo, D), and the cache."""
    who = f"{kind}_pool3d"
    if kind not in KINDS:
        raise ValueError(f"pool3d: kind must be 'max' or 'avg', got {kind!r}.")
    if x.ndim != 5:
        raise ValueError(f"{who}: x must be (N, Z, H, W, D), got shape {fmt_shape(x.shape)}.")
    pads, pool, strides, out = pool3d_geometry(x.shape, pool_size, stride, padding, who)
    xp = pad_spatial(x, pads, -np.inf if kind == "max" else 0.0)
    blocks = [(slice(None), *block) for _, block in tap_slices(pool, strides, (1, 1, 1), out)]
    y = xp[blocks[0]].copy()
    combine = np.maximum if kind == "max" else np.add
    for block in blocks[1:]:
        combine(y, xp[block], out=y)
    counts = None
    if kind == "avg":
        counts = _window_counts(x.shape, pads, pool, strides, out, x.dtype)
        y /= counts
    keep = (xp, y) if kind == "max" else (None, None)
    return y, Pool3DCache(kind, xp.shape, pads, pool, strides, out, *keep, counts)


def _window_counts(x_shape, pads, pool, strides, out, dtype):
    """Number of real (non-padding) cells in each window: (1, Zo, Ho, Wo, 1)."""
    ones = pad_spatial(np.ones((1, *x_shape[1:4], 1), dtype), pads, 0.0)
    counts = np.zeros((1, *out, 1), dtype)
    for _, block in tap_slices(pool, strides, (1, 1, 1), out):
        counts += ones[(slice(None), *block)]
    return counts


def pool3d_backward(dy, cache: Pool3DCache):
    """Gradient of :func:`pool3d_forward`: dx (N, Z, H, W, D).

    Max sends each dy to the cell that won its window (the first one in window order on ties, as
    PyTorch does); average spreads dy / count over the window's real cells. Overlapping windows
    add up.
    """
    dxp = np.zeros(cache.xp_shape, dy.dtype)
    blocks = [
        (slice(None), *b) for _, b in tap_slices(cache.pool, cache.strides, (1, 1, 1), cache.out)
    ]
    if cache.kind == "max":
        unclaimed = np.ones(cache.y.shape, bool)
        winner = np.empty(cache.y.shape, bool)
        for block in blocks:
            np.equal(cache.xp[block], cache.y, out=winner)
            winner &= unclaimed
            unclaimed ^= winner
            dxp[block] += dy * winner
    else:
        g = dy / cache.counts
        for block in blocks:
            dxp[block] += g
    return crop_nd(dxp, cache.pads)


def max_pool3d_forward(x, pool_size=2, stride=None, padding="valid"):
    """Max pooling of x (N, Z, H, W, D) -> (N, Zo, Ho, Wo, D); returns (y, cache)."""
    return pool3d_forward(x, pool_size, stride, padding, "max")


def avg_pool3d_forward(x, pool_size=2, stride=None, padding="valid"):
    """Average pooling of x (N, Z, H, W, D) over each window's real cells; returns (y, cache)."""
    return pool3d_forward(x, pool_size, stride, padding, "avg")


max_pool3d_backward = avg_pool3d_backward = pool3d_backward


def _max_pool3d(x, pool_size=2, stride=None, padding="valid"):
    """Max pooling of x (N, Z, H, W, D) -> (N, Zo, Ho, Wo, D); pool_size and stride are ints or
    triples (stride defaults to pool_size), padding 'valid' or 'same'.

    >>> x = np.arange(8.0).reshape(1, 2, 2, 2, 1)
    >>> max_pool3d(x, 2)[:, :, :, :, 0]
    array([[[[7.]]]])
    """
    return pool3d_forward(x, pool_size, stride, padding, "max")[0]


def _avg_pool3d(x, pool_size=2, stride=None, padding="valid"):
    """Average pooling of x (N, Z, H, W, D) -> (N, Zo, Ho, Wo, D) ('same': over real cells).

    >>> x = np.arange(8.0).reshape(1, 2, 2, 2, 1)
    >>> avg_pool3d(x, 2)[:, :, :, :, 0]
    array([[[[3.5]]]])
    """
    return pool3d_forward(x, pool_size, stride, padding, "avg")[0]


# the public ops check their arguments first (lists, integer dtypes, empty axes)
max_pool3d = _sliding("max_pool3d", ("x",), _max_pool3d, 3)
avg_pool3d = _sliding("avg_pool3d", ("x",), _avg_pool3d, 3)
max_pool3d.__name__ = max_pool3d.__qualname__ = "max_pool3d"
avg_pool3d.__name__ = avg_pool3d.__qualname__ = "avg_pool3d"
