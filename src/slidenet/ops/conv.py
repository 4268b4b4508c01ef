"""Convolution as the lectures draw it: slide a bank of K filters over the volume.

Each filter spans the full input depth D; at every position it takes a dot product with the window
and adds its bias. Like every deep-learning library this is cross-correlation (the kernel is not
flipped):

    y[n, i, j, k] = b[k] + sum_{u, v, d} x_pad[n, i*sh + u*dh, j*sw + v*dw, d] * w[u, v, d, k]

with output size Ho = (H - Fh_eff + pt + pb) / sh + 1 (see :mod:`slidenet.ops.shapes`). Computed as
im2col + one GEMM; the columns are cached for the weight gradient.

Backward (the correlation picture): dw is the correlation of the input with the output gradient,
dw[u, v, d, k] = sum_{n,i,j} x_pad[n, i*sh + u*dh, j*sw + v*dw, d] * dy[n, i, j, k] = cols^T @ dy;
dx spreads each dy back through the weights it came from (the adjoint of im2col): one GEMM per
filter tap, dy @ w[u, v]^T, added onto the input positions that tap saw.

``algorithm="winograd"`` computes the same numbers (up to float rounding) for square 3x3 and 5x5
stride-1 kernels with Winograd minimal filtering (:mod:`slidenet.ops.winograd`), with fewer
multiplications: the forward pass (keeping the transformed input tiles for dw instead of the
columns), dw in the transformed domain, and dx.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from slidenet._validation import fmt_shape, int_tuple
from slidenet.ops import kernels
from slidenet.ops.dense import column_sums
from slidenet.ops.im2col import crop_spatial, im2col, pad_spatial
from slidenet.ops.shapes import effective_size, output_length, resolve_padding
from slidenet.ops.winograd import winograd_applies, winograd_backward, winograd_conv2d

ALGORITHMS = ("im2col", "winograd")


class Conv2DCache(NamedTuple):
    """What conv2d_backward needs: the columns, the kernel and the geometry."""

    cols: np.ndarray | None  # (N*Ho*Wo, Fh*Fw*D); None when the forward pass was Winograd
    tiles: np.ndarray | None  # Winograd's transformed input tiles (a*a, T, D), else None
    w: np.ndarray  # (Fh, Fw, D, K)
    has_bias: bool
    xp_shape: tuple  # (N, Hp, Wp, D)
    pads: tuple  # ((top, bottom), (left, right))
    strides: tuple
    dilations: tuple
    out_hw: tuple


def conv2d_geometry(x_shape, w_shape, stride=1, padding="valid", dilation=1, who="conv2d"):
    """Check that a kernel fits an input and return (pads, strides, dilations, (Ho, Wo)).

    Args:
        x_shape: (N, H, W, D) or (H, W, D); w_shape: (Fh, Fw, D, K).

    Raises:
        ValueError: naming ``who``, the shapes and a fix when the kernel does not fit.
    """
    h, w_in = x_shape[-3], x_shape[-2]
    fh, fw = w_shape[0], w_shape[1]
    strides = int_tuple(stride, 2, f"{who}: strides")
    dilations = int_tuple(dilation, 2, f"{who}: dilation_rate")
    pads = resolve_padding(padding, (h, w_in), (fh, fw), strides, dilations, who)
    out = tuple(
        output_length(n, f, s, p, d)
        for n, f, s, p, d in zip((h, w_in), (fh, fw), strides, pads, dilations, strict=True)
    )
    if min(out) < 1:
        eff = f"{effective_size(fh, dilations[0])}x{effective_size(fw, dilations[1])}"
        dil = "" if dilations == (1, 1) else f" (dilated to {eff})"
        raise ValueError(
            f"{who}: kernel {fh}x{fw}{dil} does not fit input {h}x{w_in} with padding={padding!r}. "
            f"Use padding='same' or a kernel of at most {h}x{w_in}."
        )
    return pads, strides, dilations, out


def _check_conv_args(x, w, b, who):
    if x.ndim != 4:
        raise ValueError(f"{who}: x must be (N, H, W, D), got shape {fmt_shape(x.shape)}.")
    if w.ndim != 4:
        raise ValueError(f"{who}: w must be (Fh, Fw, D, K), got shape {fmt_shape(w.shape)}.")
    if w.shape[2] != x.shape[3]:
        raise ValueError(
            f"{who}: the filters span depth {w.shape[2]} but the input has depth {x.shape[3]} "
            f"(x {fmt_shape(x.shape)}, w {fmt_shape(w.shape)}); filters must span the full depth."
        )
    if b is not None and b.shape != (w.shape[3],):
        raise ValueError(f"{who}: b must have shape ({w.shape[3]},), got {fmt_shape(b.shape)}.")


def _check_algorithm(algorithm, kernel, strides, dilations, pads, who):
    if algorithm not in ALGORITHMS:
        raise ValueError(f"{who}: algorithm must be one of {ALGORITHMS}, got {algorithm!r}.")
    if algorithm == "winograd" and not winograd_applies(kernel, strides, dilations, pads):
        raise ValueError(
            f"{who}: algorithm='winograd' needs a square 3x3 or 5x5 kernel, stride 1, no dilation "
            f"and pads of at most kernel-1 (got kernel {kernel[0]}x{kernel[1]}, strides {strides}, "
            f"dilation {dilations}, pads {pads}); use algorithm='im2col'."
        )


def conv2d_forward(
    x, w, b=None, *, stride=1, padding="valid", dilation=1, cols_out=None, algorithm="im2col"
):
    """2D convolution (cross-correlation) of an NHWC batch with a bank of K filters.

    Args:
        x: input (N, H, W, D).
        w: filters (Fh, Fw, D, K).
        b: bias (K,) or None.
        stride: int or (sh, sw). padding: 'valid', 'same', P, (Ph, Pw) or ((pt, pb), (pl, pr)).
        dilation: int or (dh, dw).
        cols_out: optional reusable buffer (N*Ho*Wo, Fh*Fw*D) for the columns (see im2col).
        algorithm: 'im2col' (columns + one GEMM) or 'winograd' (3x3 / 5x5, stride 1).

    Returns:
        y: (N, Ho, Wo, K) in x's dtype, and the cache for :func:`conv2d_backward`.
    """
    _check_conv_args(x, w, b, "conv2d")
    pads, strides, dilations, (ho, wo) = conv2d_geometry(
        x.shape, w.shape, stride, padding, dilation
    )
    fh, fw, d, k = w.shape
    _check_algorithm(algorithm, (fh, fw), strides, dilations, pads, "conv2d")
    if algorithm == "winograd":
        y, tiles = winograd_conv2d(x, w, pads, return_tiles=True, b=b)  # the bias added
        cols, xp_shape = None, _padded_shape(x.shape, pads)
    else:
        xp = pad_spatial(x, pads)
        cols = im2col(xp, (fh, fw), strides, dilations, (ho, wo), out=cols_out)
        y = (cols @ w.reshape(fh * fw * d, k).astype(x.dtype, copy=False)).reshape(-1, ho, wo, k)
        tiles, xp_shape = None, xp.shape
    if b is not None and algorithm != "winograd":
        y += b.astype(x.dtype, copy=False)
    cache = Conv2DCache(cols, tiles, w, b is not None, xp_shape, pads, strides, dilations, (ho, wo))
    return y, cache


def _padded_shape(x_shape, pads):
    (pt, pb), (pl, pr) = pads
    return (x_shape[0], x_shape[1] + pt + pb, x_shape[2] + pl + pr, x_shape[3])


def conv2d_backward(dy, cache: Conv2DCache, need_dx=True):
    """Gradients of :func:`conv2d_forward`, by the algorithm the forward pass used.

    Args:
        dy: (N, Ho, Wo, K) gradient of the loss with respect to y.
        need_dx: False skips dx (a network's first layer needs no input gradient).

    Returns:
        dx (N, H, W, D) or None, dw (Fh, Fw, D, K), db (K,) or None.
    """
    k = cache.w.shape[3]
    dy2 = dy.reshape(-1, k)
    db = column_sums(dy2) if cache.has_bias else None
    if cache.tiles is not None:  # Winograd: both gradients in the transformed domain
        dx, dw = winograd_backward(dy, cache.tiles, cache.w, cache.pads, need_dx)
        return dx, dw, db
    dw = (cache.cols.T @ dy2).reshape(cache.w.shape)
    dx = crop_spatial(conv2d_input_grad(dy2, cache), cache.pads) if need_dx else None
    return dx, dw, db


# compiled col2im beats the per-tap GEMMs below this input depth (1.4 vs 2.3 ms for LeNet-5's
# conv2 at batch 100; 3.3 vs 11 ms for a one-channel 5x5 'same' layer with 32 filters)
COL2IM_MAX_DEPTH = 16


def conv2d_input_grad(dy2, cache: Conv2DCache):
    """d loss / d x_pad: every filter tap (u, v) sends dy back through its weights w[u, v].

    With the compiled kernels and an input depth of at most COL2IM_MAX_DEPTH: col2im(dy @ W^T)
    in one compiled pass (slidenet/ops/compiled/conv.py), the same numbers up to rounding.

    One GEMM per tap, dy (N*Ho*Wo, K) @ w[u, v]^T (K, D), added onto the strided slice of the padded
    input that tap touched. Equivalent to col2im(dy @ W^T) without the (N*Ho*Wo, Fh*Fw*D) buffer,
    and
    the additions run over long contiguous rows.
    """
    n = cache.xp_shape[0]
    fh, fw, d, _ = cache.w.shape
    (sh, sw), (dh, dw), (ho, wo) = cache.strides, cache.dilations, cache.out_hw
    w = cache.w.astype(dy2.dtype, copy=False)
    dxp = np.zeros(cache.xp_shape, dy2.dtype)
    if kernels.compiled() and d <= COL2IM_MAX_DEPTH and dy2.dtype in (np.float32, np.float64):
        from slidenet.ops.compiled.conv import col2im_add  # dy @ W^T, then one compiled col2im

        dcols = dy2 @ w.reshape(fh * fw * d, -1).T
        col2im_add(dcols, fh, fw, sh, sw, dh, dw, ho, wo, dxp)
        return dxp
    for u in range(fh):
        for v in range(fw):
            r, c = u * dh, v * dw
            rows, cols = slice(r, r + sh * (ho - 1) + 1, sh), slice(c, c + sw * (wo - 1) + 1, sw)
            dxp[:, rows, cols, :] += (dy2 @ w[u, v].T).reshape(n, ho, wo, d)
    return dxp


def conv2d(x, w, b=None, stride=1, padding="valid", dilation=1):
    """2D convolution y (N, Ho, Wo, K) of x (N, H, W, D) with w (Fh, Fw, D, K); see conv2d_forward.

    >>> x = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
    >>> conv2d(x, np.ones((3, 3, 1, 1), np.float32))[0, :, :, 0]   # 3x3 box sums, 'valid'
    array([[45., 54.],
           [81., 90.]], dtype=float32)
    """
    return conv2d_forward(x, w, b, stride=stride, padding=padding, dilation=dilation)[0]


class Conv1DCache(NamedTuple):
    """conv1d runs conv2d on a height-1 image; this wraps that cache."""

    conv2d: Conv2DCache


def _as_2d(x, w, stride, padding, dilation, who="conv1d"):
    if x.ndim != 3:
        raise ValueError(f"{who}: x must be (N, L, D), got shape {fmt_shape(x.shape)}.")
    if w.ndim != 3:
        raise ValueError(f"{who}: w must be (F, D, K), got shape {fmt_shape(w.shape)}.")
    if not isinstance(padding, str):
        if isinstance(padding, int):
            padding = ((0, 0), (padding, padding))
        else:
            padding = ((0, 0), tuple(padding))
    (s,) = int_tuple(stride, 1, f"{who}: strides")
    (dil,) = int_tuple(dilation, 1, f"{who}: dilation_rate")
    return x[:, None], w[None], (1, s), padding, (1, dil)


def conv1d_forward(
    x, w, b=None, *, stride=1, padding="valid", dilation=1, cols_out=None, algorithm="im2col"
):
    """1D convolution for scanning signals: a filter of width F slides along L.

    Args:
        x: input (N, L, D). w: filters (F, D, K). b: bias (K,) or None.
        stride, dilation: ints. padding: 'valid', 'same', an int P or a pair (before, after).

    Returns:
        y: (N, Lo, K), and the cache for :func:`conv1d_backward`.
    """
    x2, w2, s, p, d = _as_2d(x, w, stride, padding, dilation)
    try:
        y, cache = conv2d_forward(
            x2, w2, b, stride=s, padding=p, dilation=d, cols_out=cols_out, algorithm=algorithm
        )
    except ValueError as e:
        raise ValueError(str(e).replace("conv2d", "conv1d")) from None
    return y[:, 0], Conv1DCache(cache)


def conv1d_backward(dy, cache: Conv1DCache, need_dx=True):
    """Gradients of :func:`conv1d_forward`: dx (N, L, D) or None, dw (F, D, K), db (K,) or None."""
    dx, dw, db = conv2d_backward(dy[:, None], cache.conv2d, need_dx)
    return (dx[:, 0] if need_dx else None), dw[0], db


def conv1d(x, w, b=None, stride=1, padding="valid", dilation=1):
    """1D convolution y (N, Lo, K) of x (N, L, D) with w (F, D, K); see conv1d_forward."""
    return conv1d_forward(x, w, b, stride=stride, padding=padding, dilation=dilation)[0]
