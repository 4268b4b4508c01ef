"""3D convolution of volumes and videos: K filters slid along three spatial axes.

A batch of volumes is x (N, Z, H, W, D): Z slices (or video frames) of H x W pixels with D channels
each, channels last (Keras' NDHWC; here D stays the channel count, as everywhere in slidenet, and
the volume's own depth axis is called Z). The filters are w (Fz, Fh, Fw, D, K), Keras' kernel
layout, each spanning the full channel depth D. As in 2D this is cross-correlation:

    y[n, t, i, j, k] = b[k] + sum_{s, u, v, d} xp[n, t*sz + s*dz, i*sh + u*dh, j*sw + v*dw, d]
                                                * w[s, u, v, d, k]

with Zo = (Z - Fz_eff + pz_before + pz_after) / sz + 1 outputs along Z (Ho, Wo likewise, see
:mod:`slidenet.ops.shapes`; 'same' follows TensorFlow's rule on each axis). Computed as in 2D:
im2col (every window copied into a row of Fz*Fh*Fw*D values, order (Fz, Fh, Fw, D)) and one GEMM.

Backward: dw = cols^T @ dy; dx spreads dy back through each filter tap (s, u, v): one GEMM
dy @ w[s, u, v]^T per tap, added onto the strided block of the padded input that tap saw.
"""

from __future__ import annotations

import itertools
from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import as_strided

from slidenet._validation import fmt_shape, int_tuple
from slidenet.ops.checked import _sliding
from slidenet.ops.dense import column_sums
from slidenet.ops.im2col import pad_spatial
from slidenet.ops.shapes import effective_size, output_length, resolve_padding


class Conv3DCache(NamedTuple):
    """What conv3d_backward needs: the columns, the kernel and the geometry."""

    cols: np.ndarray  # (N*Zo*Ho*Wo, Fz*Fh*Fw*D)
    w: np.ndarray  # (Fz, Fh, Fw, D, K)
    has_bias: bool
    xp_shape: tuple  # (N, Zp, Hp, Wp, D)
    pads: tuple  # ((z_before, z_after), (top, bottom), (left, right))
    strides: tuple
    dilations: tuple
    out: tuple  # (Zo, Ho, Wo)


def _x(sizes) -> str:
    return "x".join(str(s) for s in sizes)


def conv3d_geometry(x_shape, w_shape, stride=1, padding="valid", dilation=1, who="conv3d"):
    """Check that a kernel fits an input and return (pads, strides, dilations, (Zo, Ho, Wo)).

    Args:
        x_shape: (N, Z, H, W, D) or (Z, H, W, D); w_shape: (Fz, Fh, Fw, D, K).

    Raises:
        ValueError: naming ``who``, the shapes and a fix when the kernel does not fit.
    """
    sizes, kernel = tuple(x_shape[-4:-1]), tuple(w_shape[:3])
    strides = int_tuple(stride, 3, f"{who}: strides")
    dilations = int_tuple(dilation, 3, f"{who}: dilation_rate")
    pads = resolve_padding(padding, sizes, kernel, strides, dilations, who)
    out = tuple(
        output_length(n, f, s, p, d)
        for n, f, s, p, d in zip(sizes, kernel, strides, pads, dilations, strict=True)
    )
    if min(out) < 1:
        eff = _x(effective_size(f, d) for f, d in zip(kernel, dilations, strict=True))
        dil = "" if dilations == (1, 1, 1) else f" (dilated to {eff})"
        raise ValueError(
            f"{who}: kernel {_x(kernel)}{dil} does not fit input {_x(sizes)} (Z x H x W) with "
            f"padding={padding!r}. Use padding='same' or a kernel of at most {_x(sizes)}."
        )
    return pads, strides, dilations, out


def _check_args(x, w, b, who="conv3d"):
    if x.ndim != 5:
        raise ValueError(f"{who}: x must be (N, Z, H, W, D), got shape {fmt_shape(x.shape)}.")
    if w.ndim != 5:
        raise ValueError(f"{who}: w must be (Fz, Fh, Fw, D, K), got shape {fmt_shape(w.shape)}.")
    if w.shape[3] != x.shape[4]:
        raise ValueError(
            f"{who}: the filters span depth {w.shape[3]} but the input has depth {x.shape[4]} "
            f"(x {fmt_shape(x.shape)}, w {fmt_shape(w.shape)}); filters must span the full depth."
        )
    if b is not None and b.shape != (w.shape[4],):
        raise ValueError(f"{who}: b must have shape ({w.shape[4]},), got {fmt_shape(b.shape)}.")


def windows_nd(xp, kernel, strides, dilations, out) -> np.ndarray:
    """A read-only strided view of every window of xp (N, *spatial, D): (N, *out, *kernel, D).

    Element [n, *o, *f, d] is xp[n, *(o*s + f*dil), d]; no data is copied.
    """
    s_n, *s_sp, s_d = xp.strides
    return as_strided(
        xp,
        shape=(xp.shape[0], *out, *kernel, xp.shape[-1]),
        strides=(
            s_n,
            *(a * s for a, s in zip(s_sp, strides, strict=True)),
            *(a * d for a, d in zip(s_sp, dilations, strict=True)),
            s_d,
        ),
        writeable=False,
    )


def tap_slices(kernel, strides, dilations, out):
    """For each filter tap (an offset per spatial axis): that tap's index and the slices of the
    padded input it reads, one strided slice per axis covering every window at once."""
    for tap in itertools.product(*(range(f) for f in kernel)):
        yield (
            tap,
            tuple(
                slice(t * d, t * d + s * (o - 1) + 1, s)
                for t, s, d, o in zip(tap, strides, dilations, out, strict=True)
            ),
        )


def im2col_nd(xp, kernel, strides, dilations, out, cols_out=None) -> np.ndarray:
    """Copy every window of xp (N, *spatial, D) into a row: (N*prod(out), prod(kernel)*D).

    A 1x1x1 stride-1 kernel needs no copy: the columns are a reshaped view of the input.
    """
    n, d = xp.shape[0], xp.shape[-1]
    shape = (n * int(np.prod(out)), int(np.prod(kernel)) * d)
    if all(f == 1 for f in kernel) and all(s == 1 for s in strides) and xp.flags.c_contiguous:
        return xp[(slice(None), *(slice(0, o) for o in out))].reshape(shape)
    if cols_out is None or cols_out.shape != shape or cols_out.dtype != xp.dtype:
        cols_out = np.empty(shape, xp.dtype)
    view = windows_nd(xp, kernel, strides, dilations, out)
    np.copyto(cols_out.reshape(view.shape), view)
    return cols_out


def crop_nd(xp, pads) -> np.ndarray:
    """Undo :func:`~slidenet.ops.im2col.pad_spatial` on any number of spatial axes (a view)."""
    sizes = xp.shape[1:-1]
    return xp[(slice(None), *(slice(a, n - b) for (a, b), n in zip(pads, sizes, strict=True)))]


def conv3d_forward(
    x, w, b=None, *, stride=1, padding="valid", dilation=1, cols_out=None, algorithm="im2col"
):
    """3D convolution (cross-correlation) of an NDHWC batch with a bank of K filters.

    Args:
        x: input (N, Z, H, W, D).
        w: filters (Fz, Fh, Fw, D, K).
        b: bias (K,) or None.
        stride: int or (sz, sh, sw). dilation: int or (dz, dh, dw).
        padding: 'valid', 'same', P, (Pz, Ph, Pw) or one (before, after) pair per axis.
        cols_out: optional reusable buffer (N*Zo*Ho*Wo, Fz*Fh*Fw*D) for the columns.
        algorithm: 'im2col' (the only one for 3D; accepted so layers can pass it on).

    Returns:
        y: (N, Zo, Ho, Wo, K) in x's dtype, and the cache for :func:`conv3d_backward`.
    """
    _check_args(x, w, b)
    if algorithm != "im2col":
        raise ValueError(f"conv3d: algorithm must be 'im2col', got {algorithm!r}.")
    pads, strides, dilations, out = conv3d_geometry(x.shape, w.shape, stride, padding, dilation)
    *kernel, d, k = w.shape
    xp = pad_spatial(x, pads)
    cols = im2col_nd(xp, kernel, strides, dilations, out, cols_out)
    y = (cols @ w.reshape(-1, k).astype(x.dtype, copy=False)).reshape(-1, *out, k)
    if b is not None:
        y += b.astype(x.dtype, copy=False)
    return y, Conv3DCache(cols, w, b is not None, xp.shape, pads, strides, dilations, out)


def conv3d_backward(dy, cache: Conv3DCache, need_dx=True):
    """Gradients of :func:`conv3d_forward`.

    Args:
        dy: (N, Zo, Ho, Wo, K) gradient of the loss with respect to y.
        need_dx: False skips dx (a network's first layer needs no input gradient).

    Returns:
        dx (N, Z, H, W, D) or None, dw (Fz, Fh, Fw, D, K), db (K,) or None.
    """
    k = cache.w.shape[-1]
    dy2 = dy.reshape(-1, k)
    db = column_sums(dy2) if cache.has_bias else None
    dw = (cache.cols.T @ dy2).reshape(cache.w.shape)
    if not need_dx:
        return None, dw, db
    n, d = cache.xp_shape[0], cache.xp_shape[-1]
    w = cache.w.astype(dy2.dtype, copy=False)
    dxp = np.zeros(cache.xp_shape, dy2.dtype)
    for tap, block in tap_slices(w.shape[:3], cache.strides, cache.dilations, cache.out):
        dxp[(slice(None), *block)] += (dy2 @ w[tap].T).reshape(n, *cache.out, d)
    return crop_nd(dxp, cache.pads), dw, db


def _conv3d(x, w, b=None, stride=1, padding="valid", dilation=1):
    """3D convolution y (N, Zo, Ho, Wo, K) of x (N, Z, H, W, D) with w (Fz, Fh, Fw, D, K).

    >>> x = np.arange(27, dtype=np.float32).reshape(1, 3, 3, 3, 1)
    >>> conv3d(x, np.ones((2, 2, 2, 1, 1), np.float32))[0, :, :, :, 0]  # 2x2x2 box sums
    array([[[ 52.,  60.],
            [ 76.,  84.]],
    <BLANKLINE>
           [[124., 132.],
            [148., 156.]]], dtype=float32)
    """
    return conv3d_forward(x, w, b, stride=stride, padding=padding, dilation=dilation)[0]


# the public op checks its arguments first (lists, integer dtypes, empty axes), as conv2d does
conv3d = _sliding("conv3d", ("x", "w", "b"), _conv3d, 3)
conv3d.__name__ = conv3d.__qualname__ = "conv3d"
