"""Pooling: summarise each window of every channel by its max, mean or sum.

Windows of pool_size (ph, pw) move with strides (sh, sw) (default: the pool size, so they do not
overlap; smaller strides make them overlap). padding='same' keeps ceil(H / sh) outputs by pooling
the
partial windows at the border, as Keras does: max ignores the padding, average divides by the
number of
real elements in the window, sum adds only real elements.

The work is done as one strided slice per window offset (u, v), each covering every window at once:
ph*pw array operations, independent of the image size. Global pooling reduces all positions of a
channel to one number ("is the pattern anywhere?").

With the compiled kernels (``slidenet.ops.kernels``) 2D pooling of float32 / float64 runs instead as
one fused loop (``slidenet/ops/compiled/pool.py``, same numbers); max pooling then keeps each
window's winning offset (int8) in place of the padded input and the output.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from slidenet._validation import fmt_shape, int_tuple
from slidenet.ops import kernels
from slidenet.ops.im2col import crop_spatial, pad_spatial
from slidenet.ops.shapes import output_length, same_pads
from slidenet.utils.threads import run_in_parts


class Pool2DCache(NamedTuple):
    """Geometry of a pooling call, and for max pooling the winning offset of each window."""

    kind: str  # 'max' | 'avg' | 'sum'
    xp_shape: tuple  # (N, Hp, Wp, D)
    pads: tuple
    pool: tuple
    strides: tuple
    out_hw: tuple
    xp: np.ndarray | None  # (N, Hp, Wp, D) padded input, for 'max' (its mask is found in backward)
    y: np.ndarray | None  # (N, Ho, Wo, D) output, for 'max'
    counts: np.ndarray | None  # (1, Ho, Wo, 1) real elements per window, for 'avg'
    # compiled max pooling keeps, instead of xp and y, the offset u * pw + v of each window's
    # winner (N, Ho, Wo, D) (-1: a NaN, routed nowhere); see slidenet/ops/compiled/pool.py
    argmax: np.ndarray | None = None


def pool2d_geometry(x_shape, pool_size, stride=None, padding="valid", who="pool2d"):
    """Check a pooling window against an input; return (pads, pool, strides, (Ho, Wo)).

    Args:
        x_shape: (N, H, W, D) or (H, W, D). pool_size: int or (ph, pw).
        stride: int, (sh, sw) or None (= pool_size). padding: 'valid' or 'same'.
    """
    h, w = x_shape[-3], x_shape[-2]
    pool = int_tuple(pool_size, 2, f"{who}: pool_size")
    strides = pool if stride is None else int_tuple(stride, 2, f"{who}: strides")
    mode = padding.lower() if isinstance(padding, str) else padding
    if mode == "valid":
        pads = ((0, 0), (0, 0))
    elif mode == "same":
        pads = (same_pads(h, pool[0], strides[0]), same_pads(w, pool[1], strides[1]))
    else:
        raise ValueError(f"{who}: padding must be 'valid' or 'same', got {padding!r}.")
    out = tuple(
        output_length(n, p, s, pad)
        for n, p, s, pad in zip((h, w), pool, strides, pads, strict=True)
    )
    if min(out) < 1:
        raise ValueError(
            f"{who}: pool window {pool[0]}x{pool[1]} does not fit input {h}x{w} with "
            f"padding={padding!r}. Use padding='same' or pool_size of at most {h}x{w}."
        )
    return pads, pool, strides, out


def _offset_slices(pool, strides, out_hw):
    """For each window offset (u, v): the (rows, cols) slices of the padded input it covers."""
    (ph, pw), (sh, sw), (ho, wo) = pool, strides, out_hw
    for u in range(ph):
        for v in range(pw):
            yield slice(u, u + sh * (ho - 1) + 1, sh), slice(v, v + sw * (wo - 1) + 1, sw)


def _check_x(x, who):
    if x.ndim != 4:
        raise ValueError(f"{who}: x must be (N, H, W, D), got shape {fmt_shape(x.shape)}.")


def pool2d_forward(x, pool_size=2, stride=None, padding="valid", kind="max"):
    """Max, average or sum pooling of x (N, H, W, D) -> y (N, Ho, Wo, D), and the cache."""
    who = f"{kind}_pool2d"
    _check_x(x, who)
    pads, pool, strides, out_hw = pool2d_geometry(x.shape, pool_size, stride, padding, who)
    if kernels.compiled() and x.dtype in _COMPILED_DTYPES:
        return _compiled_forward(x, kind, pads, pool, strides, out_hw)
    xp = pad_spatial(x, pads, -np.inf if kind == "max" else 0.0)
    counts = None
    slices = list(_offset_slices(pool, strides, out_hw))
    y = np.empty((x.shape[0], *out_hw, x.shape[3]), x.dtype)
    combine = np.maximum if kind == "max" else np.add

    def pool_examples(i, j):
        np.copyto(y[i:j], xp[i:j, slices[0][0], slices[0][1], :])
        for rows, cols in slices[1:]:
            combine(y[i:j], xp[i:j, rows, cols, :], out=y[i:j])

    run_in_parts(pool_examples, len(x), xp.size)
    if kind == "avg":
        counts = _window_counts(x.shape, pads, pool, strides, out_hw, x.dtype)
        y /= counts
    keep = (xp, y) if kind == "max" else (None, None)
    return y, Pool2DCache(kind, xp.shape, pads, pool, strides, out_hw, *keep, counts)


def _window_counts(x_shape, pads, pool, strides, out_hw, dtype):
    """Number of real (non-padding) elements in each window: (1, Ho, Wo, 1)."""
    ones = pad_spatial(np.ones((1, x_shape[1], x_shape[2], 1), dtype), pads, 0.0)
    counts = np.zeros((1, *out_hw, 1), dtype)
    for rows, cols in _offset_slices(pool, strides, out_hw):
        counts += ones[:, rows, cols, :]
    return counts


def pool2d_backward(dy, cache: Pool2DCache):
    """Gradient of :func:`pool2d_forward`: dx (N, H, W, D).

    Max sends each dy to the element that won its window; average spreads dy / count over the real
    elements; sum copies dy to every element. Overlapping windows add up.
    """
    if cache.argmax is not None or (
        kernels.compiled() and dy.dtype in _COMPILED_DTYPES and cache.kind != "max"
    ):
        return _compiled_backward(dy, cache)
    slices = _offset_slices(cache.pool, cache.strides, cache.out_hw)
    overlap = any(s < p for s, p in zip(cache.strides, cache.pool, strict=True))
    (ho, wo), (sh, sw) = cache.out_hw, cache.strides
    tiled = tuple(cache.strides) == tuple(cache.pool) and (ho * sh, wo * sw) == cache.xp_shape[1:3]
    # max windows that tile the input write every element of dx exactly once: no zeroing needed
    dxp = (np.empty if tiled and cache.kind == "max" else np.zeros)(cache.xp_shape, dy.dtype)
    if cache.kind == "max":
        slices = list(slices)

        def route_examples(i, j):
            # the first element (in window order) equal to the window's max wins, as in PyTorch
            xp, y, g, dx = cache.xp[i:j], cache.y[i:j], dy[i:j], dxp[i:j]
            unclaimed = np.ones(y.shape, bool)
            winner = np.empty(y.shape, bool)
            for rows, cols in slices:
                np.equal(xp[:, rows, cols, :], y, out=winner)
                winner &= unclaimed
                unclaimed ^= winner
                if overlap:
                    dx[:, rows, cols, :] += g * winner
                else:  # disjoint windows: write straight into place
                    np.multiply(g, winner, out=dx[:, rows, cols, :])

        run_in_parts(route_examples, len(dy), dxp.size)
    else:
        g = dy / cache.counts if cache.kind == "avg" else dy
        for rows, cols in slices:
            dxp[:, rows, cols, :] += g
    return crop_spatial(dxp, cache.pads)


# ------------------------------------------------------------ compiled kernels (kernels.compiled())

_COMPILED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _disjoint_and_covering(x_shape, pads, pool, strides, out_hw):
    """(no element is in two windows, every element is in a window)."""
    (ph, pw), (sh, sw), (ho, wo) = pool, strides, out_hw
    (pt, _), (pl, _) = pads
    disjoint = sh >= ph and sw >= pw
    covering = (sh, sw) == (ph, pw) and ho * sh - pt >= x_shape[1] and wo * sw - pl >= x_shape[2]
    return disjoint, covering


def _compiled_forward(x, kind, pads, pool, strides, out_hw):
    """pool2d_forward by the compiled kernels: no padded copy; max keeps the winners' offsets."""
    from slidenet.ops.compiled import pool as compiled

    n, h, w, d = x.shape
    (ph, pw), (sh, sw), ((pt, pb), (pl, pr)) = pool, strides, pads
    x = np.ascontiguousarray(x)
    y = np.empty((n, *out_hw, d), x.dtype)
    xp_shape = (n, h + pt + pb, w + pl + pr, d)
    # 2x2 windows, stride 2, none reaching into the padding: the specialised kernels
    two_by_two = pool == strides == (2, 2) and 2 * out_hw[0] <= h and 2 * out_hw[1] <= w
    two_by_two = two_by_two and pt == pl == 0
    if kind == "max":
        size = ph * pw
        arg = np.empty(y.shape, np.int8 if size < 128 else np.int16 if size < 32768 else np.int32)
        if two_by_two:
            compiled.max_pool2x2_forward(x, y, arg)
        else:
            compiled.max_pool2d_forward(x, ph, pw, sh, sw, pt, pl, y, arg)
        return y, Pool2DCache(kind, xp_shape, pads, pool, strides, out_hw, None, None, None, arg)
    counts = (
        _window_counts(x.shape, pads, pool, strides, out_hw, x.dtype) if kind == "avg" else None
    )
    counts2 = (
        np.ascontiguousarray(counts[0, :, :, 0]) if kind == "avg" else np.ones(out_hw, x.dtype)
    )
    if two_by_two:
        compiled.sum_pool2x2_forward(x, kind == "avg", y)
    else:
        compiled.sum_pool2d_forward(x, ph, pw, sh, sw, pt, pl, counts2, kind == "avg", y)
    return y, Pool2DCache(kind, xp_shape, pads, pool, strides, out_hw, None, None, counts)


def _compiled_backward(dy, cache: Pool2DCache):
    """pool2d_backward by the compiled kernels (max: from the recorded winners)."""
    (ph, pw), (sh, sw), ((pt, pb), (pl, pr)) = cache.pool, cache.strides, cache.pads
    n, hp, wp, d = cache.xp_shape
    x_shape = (n, hp - pt - pb, wp - pl - pr, d)
    if dy.shape != (n, *cache.out_hw, d):
        raise ValueError(
            f"{cache.kind}_pool2d backward: dy must have the output's shape "
            f"{fmt_shape((n, *cache.out_hw, d))}, got {fmt_shape(dy.shape)}."
        )
    if not kernels.compiled() or dy.dtype not in _COMPILED_DTYPES:
        return _argmax_backward_numpy(dy, cache)
    from slidenet.ops.compiled import pool as compiled

    disjoint, covering = _disjoint_and_covering(x_shape, cache.pads, *cache[3:6])
    dy = np.ascontiguousarray(dy)
    dx = (np.empty if covering else np.zeros)(x_shape, dy.dtype)
    if cache.kind == "max":
        if (
            covering
            and (ph, pw, pt, pl) == (2, 2, 0, 0)
            and x_shape[1:3] == (2 * dy.shape[1], 2 * dy.shape[2])
        ):
            compiled.max_pool2x2_backward(dy, cache.argmax, dx)
        else:
            compiled.max_pool2d_backward(dy, cache.argmax, ph, pw, sh, sw, pt, pl, disjoint, dx)
        return dx
    avg = cache.kind == "avg"
    counts2 = (
        np.ascontiguousarray(cache.counts[0, :, :, 0]) if avg else np.ones(cache.out_hw, dy.dtype)
    )
    compiled.sum_pool2d_backward(dy, ph, pw, sh, sw, pt, pl, counts2, avg, disjoint, dx)
    return dx


def _argmax_backward_numpy(dy, cache: Pool2DCache):
    """Max pooling's backward from recorded winners without the compiled kernels (a cache made by
    the compiled forward, used while the NumPy path runs)."""
    dxp = np.zeros(cache.xp_shape, dy.dtype)
    slices = _offset_slices(cache.pool, cache.strides, cache.out_hw)
    for k, (rows, cols) in enumerate(slices):
        dxp[:, rows, cols, :] += np.where(cache.argmax == k, dy, 0)
    return crop_spatial(dxp, cache.pads)


def _pool2d_public(kind):
    def forward(x, pool_size=2, stride=None, padding="valid"):
        return pool2d_forward(x, pool_size, stride, padding, kind)

    def apply(x, pool_size=2, stride=None, padding="valid"):
        return pool2d_forward(x, pool_size, stride, padding, kind)[0]

    forward.__name__, apply.__name__ = f"{kind}_pool2d_forward", f"{kind}_pool2d"
    doc = (
        f"{kind.capitalize()} pooling of x (N, H, W, D) -> (N, Ho, Wo, D); pool_size and stride "
        "are ints or pairs (stride defaults to pool_size), padding 'valid' or 'same'."
    )
    forward.__doc__ = doc + " Returns (y, cache)."
    apply.__doc__ = doc
    return forward, apply


max_pool2d_forward, max_pool2d = _pool2d_public("max")
avg_pool2d_forward, avg_pool2d = _pool2d_public("avg")
sum_pool2d_forward, sum_pool2d = _pool2d_public("sum")
max_pool2d_backward = avg_pool2d_backward = sum_pool2d_backward = pool2d_backward


def pool1d_forward(x, pool_size=2, stride=None, padding="valid", kind="max"):
    """Pooling along L of x (N, L, D) -> y (N, Lo, D): 2D pooling of a height-1 image."""
    if x.ndim != 3:
        raise ValueError(f"{kind}_pool1d: x must be (N, L, D), got shape {fmt_shape(x.shape)}.")
    (p,) = int_tuple(pool_size, 1, f"{kind}_pool1d: pool_size")
    s = None if stride is None else (1, int_tuple(stride, 1, f"{kind}_pool1d: strides")[0])
    y, cache = pool2d_forward(x[:, None], (1, p), s, padding, kind)
    return y[:, 0], cache


def pool1d_backward(dy, cache: Pool2DCache):
    """Gradient of :func:`pool1d_forward`: dx (N, L, D)."""
    return pool2d_backward(dy[:, None], cache)[:, 0]


def max_pool1d_forward(x, pool_size=2, stride=None, padding="valid"):
    """Max pooling of x (N, L, D) -> (N, Lo, D); returns (y, cache)."""
    return pool1d_forward(x, pool_size, stride, padding, "max")


def avg_pool1d_forward(x, pool_size=2, stride=None, padding="valid"):
    """Average pooling of x (N, L, D) -> (N, Lo, D); returns (y, cache)."""
    return pool1d_forward(x, pool_size, stride, padding, "avg")


max_pool1d_backward = avg_pool1d_backward = pool1d_backward


def max_pool1d(x, pool_size=2, stride=None, padding="valid"):
    """Max pooling of x (N, L, D) -> (N, Lo, D)."""
    return pool1d_forward(x, pool_size, stride, padding, "max")[0]


def avg_pool1d(x, pool_size=2, stride=None, padding="valid"):
    """Average pooling of x (N, L, D) -> (N, Lo, D)."""
    return pool1d_forward(x, pool_size, stride, padding, "avg")[0]


class GlobalPoolCache(NamedTuple):
    """Input shape, and for max the flat position (over all spatial axes) of each channel's max."""

    kind: str
    x_shape: tuple
    argmax: np.ndarray | None  # (N, D)


def global_pool_forward(x, kind="max"):
    """Global max or average over all spatial axes: x (N, ..., D) -> y (N, D), and the cache."""
    if x.ndim < 3:
        raise ValueError(
            f"global_{kind}_pool: x must be (N, L, D) or (N, H, W, D), got {fmt_shape(x.shape)}."
        )
    flat = x.reshape(x.shape[0], -1, x.shape[-1])
    if kind == "max":
        argmax = flat.argmax(axis=1)
        y = np.take_along_axis(flat, argmax[:, None, :], axis=1)[:, 0]
        return y, GlobalPoolCache(kind, x.shape, argmax)
    return flat.mean(axis=1), GlobalPoolCache(kind, x.shape, None)


def global_pool_backward(dy, cache: GlobalPoolCache):
    """Gradient of :func:`global_pool_forward`: dx with the input's shape."""
    n, d = dy.shape
    positions = int(np.prod(cache.x_shape[1:-1]))
    if cache.kind == "max":
        dflat = np.zeros((n, positions, d), dy.dtype)
        np.put_along_axis(dflat, cache.argmax[:, None, :], dy[:, None, :], axis=1)
    else:
        dflat = np.broadcast_to((dy / positions)[:, None, :], (n, positions, d)).copy()
    return dflat.reshape(cache.x_shape)


def global_max_pool(x):
    """Max over all positions of each channel: (N, H, W, D) or (N, L, D) -> (N, D)."""
    return global_pool_forward(x, "max")[0]


def global_avg_pool(x):
    """Mean over all positions of each channel: (N, H, W, D) or (N, L, D) -> (N, D)."""
    return global_pool_forward(x, "avg")[0]
