"""Convolutions that do not mix every input channel: depthwise, separable and grouped.

A full convolution's filter spans all D input channels. Splitting the channels saves weights:

- **depthwise** (Keras' DepthwiseConv2D): each input channel d gets its own M filters
  (M = depth_multiplier) that see that channel only,

      y[n, i, j, d*M + m] = b[d*M + m] + sum_{u,v} xp[n, i*sh + u*dh, j*sw + v*dw, d] * w[u,v,d,m]

  with w (Fh, Fw, D, M) and D*M output channels (output channel d*M + m, as in Keras and in
  PyTorch's conv2d with groups=D). Fh*Fw*D*M weights instead of Fh*Fw*D*K.
- **separable** (SeparableConv2D): a depthwise convolution, then a 1x1 ("pointwise") convolution
  with kernel (1, 1, D*M, K) that mixes the channels: Fh*Fw*D*M + D*M*K weights (+ K biases).
- **grouped** (Conv2D(groups=G)): the D channels and the K filters are cut into G groups; filter
  group g sees channel group g only, so the kernel is (Fh, Fw, D/G, K). G = 1 is an ordinary
  convolution; G = D with K = D*M is the depthwise convolution above.

Output sizes are those of :func:`slidenet.ops.conv2d` (same padding rules, see ops.shapes).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from slidenet._validation import fmt_shape, positive_int
from slidenet.ops.conv import conv2d_backward, conv2d_forward, conv2d_geometry
from slidenet.ops.im2col import crop_spatial, pad_spatial


def _check_4d(x, w, who, w_layout):
    if x.ndim != 4:
        raise ValueError(f"{who}: x must be (N, H, W, D), got shape {fmt_shape(x.shape)}.")
    if w.ndim != 4:
        raise ValueError(f"{who}: w must be {w_layout}, got shape {fmt_shape(w.shape)}.")


def _check_bias(b, k, who):
    if b is not None and b.shape != (k,):
        raise ValueError(f"{who}: b must have shape ({k},), got {fmt_shape(b.shape)}.")


# ------------------------------------------------------------------------------------- depthwise


class DepthwiseCache(NamedTuple):
    """What depthwise_conv2d_backward needs: the padded input, the kernel and the geometry."""

    xp: np.ndarray  # (N, Hp, Wp, D)
    w: np.ndarray  # (Fh, Fw, D, M)
    has_bias: bool
    pads: tuple
    strides: tuple
    dilations: tuple
    out_hw: tuple


def _taps(cache_like):
    """Yield (u, v, rows, cols): each filter tap and the strided slice of xp it reads."""
    fh, fw = cache_like.w.shape[:2]
    (sh, sw), (dh, dw), (ho, wo) = cache_like.strides, cache_like.dilations, cache_like.out_hw
    for u in range(fh):
        for v in range(fw):
            r, c = u * dh, v * dw
            yield u, v, slice(r, r + sh * (ho - 1) + 1, sh), slice(c, c + sw * (wo - 1) + 1, sw)


def depthwise_conv2d_forward(x, w, b=None, *, stride=1, padding="valid", dilation=1):
    """Depthwise 2D convolution: M filters per input channel, each seeing that channel only.

    Args:
        x: input (N, H, W, D). w: depthwise kernel (Fh, Fw, D, M). b: bias (D*M,) or None.
        stride, padding, dilation: as :func:`slidenet.ops.conv2d_forward`.

    Returns:
        y: (N, Ho, Wo, D*M) in x's dtype (channel d*M + m), and the cache for the backward pass.
    """
    who = "depthwise_conv2d"
    _check_4d(x, w, who, "(Fh, Fw, D, M)")
    if w.shape[2] != x.shape[3]:
        raise ValueError(
            f"{who}: the kernel has {w.shape[2]} channels but the input has depth {x.shape[3]} "
            f"(x {fmt_shape(x.shape)}, w {fmt_shape(w.shape)}); w must be (Fh, Fw, D, M)."
        )
    n, _, _, d = x.shape
    m = w.shape[3]
    _check_bias(b, d * m, who)
    pads, strides, dilations, (ho, wo) = conv2d_geometry(
        x.shape, w.shape, stride, padding, dilation, who
    )
    xp = pad_spatial(x, pads)
    wx = w.astype(x.dtype, copy=False)
    cache = DepthwiseCache(xp, wx, b is not None, pads, strides, dilations, (ho, wo))
    y = np.zeros((n, ho, wo, d, m), x.dtype)
    for u, v, rows, cols in _taps(cache):  # one broadcast multiply-add per filter tap
        y += xp[:, rows, cols, :, None] * wx[u, v]
    y = y.reshape(n, ho, wo, d * m)
    if b is not None:
        y += b.astype(x.dtype, copy=False)
    return y, cache


def depthwise_conv2d_backward(dy, cache: DepthwiseCache, need_dx=True):
    """Gradients of :func:`depthwise_conv2d_forward`.

    Per tap (u, v): dw[u, v, d, m] = sum_{n,i,j} window[n, i, j, d] * dy[n, i, j, d, m] and
    dx_window[n, i, j, d] += sum_m dy[n, i, j, d, m] * w[u, v, d, m].

    Returns:
        dx (N, H, W, D) or None, dw (Fh, Fw, D, M), db (D*M,) or None.
    """
    xp, w = cache.xp, cache.w
    n, (ho, wo), (_, _, d, m) = xp.shape[0], cache.out_hw, w.shape
    dy5 = dy.reshape(n, ho, wo, d, m)
    dw = np.empty(w.shape, dy.dtype)
    dxp = np.zeros(xp.shape, dy.dtype) if need_dx else None
    for u, v, rows, cols in _taps(cache):
        dw[u, v] = np.einsum("nijd,nijdm->dm", xp[:, rows, cols, :], dy5)
        if need_dx:
            dxp[:, rows, cols, :] += np.einsum("nijdm,dm->nijd", dy5, w[u, v])
    db = dy.sum(axis=(0, 1, 2)) if cache.has_bias else None
    dx = crop_spatial(dxp, cache.pads) if need_dx else None
    return dx, dw, db


def depthwise_conv2d(x, w, b=None, stride=1, padding="valid", dilation=1):
    """Depthwise convolution y (N, Ho, Wo, D*M) of x (N, H, W, D) with w (Fh, Fw, D, M).

    >>> x = np.arange(8.0).reshape(1, 2, 2, 2)    # channel 0: 0 2 4 6, channel 1: 1 3 5 7
    >>> depthwise_conv2d(x, np.ones((2, 2, 2, 1)))[0, 0, 0]   # one 2x2 sum per channel
    array([12., 16.])
    """
    return depthwise_conv2d_forward(x, w, b, stride=stride, padding=padding, dilation=dilation)[0]


# ------------------------------------------------------------------------------------- separable


class SeparableCache(NamedTuple):
    """The two caches of a separable convolution: depthwise, then pointwise (a 1x1 conv2d)."""

    depthwise: DepthwiseCache
    pointwise: object  # slidenet.ops.conv.Conv2DCache


def separable_conv2d_forward(
    x, depthwise_kernel, pointwise_kernel, b=None, *, stride=1, padding="valid", dilation=1
):
    """Depthwise convolution (stride, padding, dilation apply here), then a 1x1 convolution.

    Args:
        x: input (N, H, W, D). depthwise_kernel: (Fh, Fw, D, M).
        pointwise_kernel: (1, 1, D*M, K). b: bias (K,) or None (added after the pointwise step).

    Returns:
        y: (N, Ho, Wo, K), and the cache for :func:`separable_conv2d_backward`.
    """
    who = "separable_conv2d"
    _check_4d(x, depthwise_kernel, who, "(Fh, Fw, D, M)")
    dm = depthwise_kernel.shape[2] * depthwise_kernel.shape[3]
    pk = pointwise_kernel
    if pk.ndim != 4 or pk.shape[:3] != (1, 1, dm):
        raise ValueError(
            f"{who}: pointwise_kernel must be (1, 1, D*M, K) = (1, 1, {dm}, K) for depthwise "
            f"kernel {fmt_shape(depthwise_kernel.shape)}, got {fmt_shape(pk.shape)}."
        )
    _check_bias(b, pk.shape[3], who)
    try:
        z, dcache = depthwise_conv2d_forward(
            x, depthwise_kernel, stride=stride, padding=padding, dilation=dilation
        )
    except ValueError as e:
        raise ValueError(str(e).replace("depthwise_conv2d", who)) from None
    y, pcache = conv2d_forward(z, pk.astype(x.dtype, copy=False), b)
    return y, SeparableCache(dcache, pcache)


def separable_conv2d_backward(dy, cache: SeparableCache, need_dx=True):
    """Gradients of :func:`separable_conv2d_forward`: back through the 1x1 step, then the
    depthwise step.

    Returns:
        dx (N, H, W, D) or None, d depthwise_kernel, d pointwise_kernel, db (K,) or None.
    """
    dz, dpk, db = conv2d_backward(dy, cache.pointwise)
    dx, ddk, _ = depthwise_conv2d_backward(dz, cache.depthwise, need_dx)
    return dx, ddk, dpk, db


def separable_conv2d(x, depthwise_kernel, pointwise_kernel, b=None, stride=1, padding="valid",
                     dilation=1):  # fmt: skip
    """Separable convolution y (N, Ho, Wo, K); see separable_conv2d_forward."""
    return separable_conv2d_forward(
        x, depthwise_kernel, pointwise_kernel, b, stride=stride, padding=padding, dilation=dilation
    )[0]


# --------------------------------------------------------------------------------------- grouped


def check_groups(groups, depth, filters, who="conv2d_grouped") -> int:
    """groups as an int that divides both the input depth D and the number of filters K.

    Raises:
        ValueError: naming ``who``, the numbers and the group counts that would work.

    >>> check_groups(2, 4, 6)
    2
    """
    groups = positive_int(groups, f"{who}: groups")
    for what, count in (("filters", filters), ("input channels", depth)):
        if count % groups:
            fits = [g for g in range(1, count + 1) if count % g == 0]
            raise ValueError(
                f"{who}: {what} ({count}) must be divisible by groups ({groups}): each of the "
                f"{groups} groups needs {what} {count}/{groups} = {count / groups:.3g}. Use "
                f"groups in {fits} or {what} a multiple of {groups}."
            )
    return groups


class GroupedCache(NamedTuple):
    """One conv2d cache per group."""

    groups: tuple


def conv2d_grouped_forward(x, w, b=None, *, groups=1, stride=1, padding="valid", dilation=1):
    """Grouped 2D convolution: filter group g sees input-channel group g only.

    Each group is an ordinary :func:`slidenet.ops.conv2d_forward` on D/G channels with K/G filters
    (im2col + GEMM), the outputs concatenated along the channels.

    Args:
        x: input (N, H, W, D). w: kernel (Fh, Fw, D/G, K). b: bias (K,) or None.
        groups: G, dividing D and K. stride, padding, dilation: as conv2d_forward.

    Returns:
        y: (N, Ho, Wo, K), and the cache for :func:`conv2d_grouped_backward`.
    """
    who = "conv2d_grouped"
    _check_4d(x, w, who, "(Fh, Fw, D/G, K)")
    d, k = x.shape[3], w.shape[3]
    g = check_groups(groups, d, k, who)
    if w.shape[2] * g != d:
        raise ValueError(
            f"{who}: with groups={g} and input depth {d} each filter spans D/G = {d // g} "
            f"channels, so w must be (Fh, Fw, {d // g}, K), got {fmt_shape(w.shape)}."
        )
    _check_bias(b, k, who)
    dg, kg = d // g, k // g
    ys, caches = [], []
    for i in range(g):
        try:
            y, cache = conv2d_forward(
                x[..., i * dg : (i + 1) * dg],
                w[..., i * kg : (i + 1) * kg],
                None if b is None else b[i * kg : (i + 1) * kg],
                stride=stride,
                padding=padding,
                dilation=dilation,
            )
        except ValueError as e:
            raise ValueError(str(e).replace("conv2d:", f"{who}:")) from None
        ys.append(y)
        caches.append(cache)
    y = ys[0] if g == 1 else np.concatenate(ys, axis=-1)
    return y, GroupedCache(tuple(caches))


def conv2d_grouped_backward(dy, cache: GroupedCache, need_dx=True):
    """Gradients of :func:`conv2d_grouped_forward`, group by group.

    Returns:
        dx (N, H, W, D) or None, dw (Fh, Fw, D/G, K), db (K,) or None.
    """
    kg = cache.groups[0].w.shape[3]
    parts = [
        conv2d_backward(dy[..., i * kg : (i + 1) * kg], c, need_dx)
        for i, c in enumerate(cache.groups)
    ]
    dx = np.concatenate([p[0] for p in parts], axis=-1) if need_dx else None
    dw = np.concatenate([p[1] for p in parts], axis=-1)
    db = None if parts[0][2] is None else np.concatenate([p[2] for p in parts])
    return dx, dw, db


def conv2d_grouped(x, w, b=None, groups=1, stride=1, padding="valid", dilation=1):
    """Grouped convolution y (N, Ho, Wo, K) of x (N, H, W, D) with w (Fh, Fw, D/G, K)."""
    return conv2d_grouped_forward(
        x, w, b, groups=groups, stride=stride, padding=padding, dilation=dilation
    )[0]
