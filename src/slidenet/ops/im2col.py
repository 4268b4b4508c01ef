"""Patch extraction (im2col) and its adjoint (col2im) for NHWC volumes.

A convolution is a dot product between each filter and every window of the (padded) input. im2col
copies every window into one row of a matrix, so the whole convolution becomes one matrix product:

    x (N, H, W, D) --pad--> xp (N, Hp, Wp, D) --im2col--> cols (N*Ho*Wo, Fh*Fw*D)

A row holds one window in patch order (Fh, Fw, D): depth fastest, so the copy reads contiguous runs
of
D values and matches a Keras kernel (Fh, Fw, D, K) reshaped to (Fh*Fw*D, K).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided


def pad_spatial(x: np.ndarray, pads, value: float = 0.0) -> np.ndarray:
    """Pad the spatial axes of x (N, *spatial, D) with ``value``; returns x itself when pads are 0.

    Args:
        x: array (N, H, W, D).
        pads: ((top, bottom), (left, right)).
    """
    if not any(p for pair in pads for p in pair):
        return x
    return np.pad(x, ((0, 0), *pads, (0, 0)), constant_values=value)


def crop_spatial(xp: np.ndarray, pads) -> np.ndarray:
    """Undo :func:`pad_spatial`: a view of xp (N, Hp, Wp, D) without the padded border."""
    (pt, pb), (pl, pr) = pads
    return xp[:, pt : xp.shape[1] - pb, pl : xp.shape[2] - pr, :]


def windows(xp: np.ndarray, kernel, strides, dilations, out_hw) -> np.ndarray:
    """A read-only strided view of every window: (N, Ho, Wo, Fh, Fw, D). No data is copied.

    Element [n, i, j, u, v, d] is xp[n, i*sh + u*dh, j*sw + v*dw, d].
    """
    n, _, _, d = xp.shape
    (fh, fw), (sh, sw), (dh, dw), (ho, wo) = kernel, strides, dilations, out_hw
    s_n, s_h, s_w, s_d = xp.strides
    return as_strided(
        xp,
        shape=(n, ho, wo, fh, fw, d),
        strides=(s_n, s_h * sh, s_w * sw, s_h * dh, s_w * dw, s_d),
        writeable=False,
    )


def im2col(xp: np.ndarray, kernel, strides, dilations, out_hw, out=None) -> np.ndarray:
    """Copy every window of xp (N, Hp, Wp, D) into a row: cols (N*Ho*Wo, Fh*Fw*D).

    Args:
        out: optional C-contiguous buffer of that shape and xp's dtype to write into (a layer
            reuses one across steps: a fresh 60 MB array costs as much in page faults as the copy).

    A 1x1 kernel with stride 1 needs no copy: the columns are a reshaped view of the input. With
    one input channel the result is a Fortran-ordered view of ``out`` (same values).
    """
    n, _, _, d = xp.shape
    (fh, fw), (ho, wo) = kernel, out_hw
    shape = (n * ho * wo, fh * fw * d)
    if (fh, fw) == (1, 1) and tuple(strides) == (1, 1) and xp.flags.c_contiguous:
        return xp[:, :ho, :wo, :].reshape(shape)
    if out is None or out.shape != shape or out.dtype != xp.dtype:
        out = np.empty(shape, xp.dtype)
    if d == 1:
        return _im2col_one_channel(xp, kernel, strides, dilations, out_hw, out)
    view = windows(xp, kernel, strides, dilations, out_hw)
    np.copyto(out.reshape(view.shape), view)
    return out


def _im2col_one_channel(xp, kernel, strides, dilations, out_hw, out):
    """With one input channel a window row is Fh*Fw scattered single values; copying them one by
    one is slow. Instead fill the transposed columns (Fh*Fw, N*Ho*Wo), one kernel offset per row,
    each a long run, and return its transpose (a Fortran-ordered view: BLAS reads it with its
    transpose flag, no copy)."""
    n = xp.shape[0]
    (fh, fw), (sh, sw), (dh, dw), (ho, wo) = kernel, strides, dilations, out_hw
    cols_t = out.reshape(-1)[: fh * fw * n * ho * wo].reshape(fh * fw, n, ho, wo)
    for u in range(fh):
        for v in range(fw):
            r, c = u * dh, v * dw
            src = xp[:, r : r + sh * (ho - 1) + 1 : sh, c : c + sw * (wo - 1) + 1 : sw, 0]
            np.copyto(cols_t[u * fw + v], src)
    return cols_t.reshape(fh * fw, n * ho * wo).T


def col2im(dcols: np.ndarray, xp_shape, kernel, strides, dilations, out_hw) -> np.ndarray:
    """Adjoint of :func:`im2col`: add every row of dcols back onto the window it came from.

    Overlapping windows sum their contributions. Done as Fh*Fw strided slice additions, one per
    kernel
    offset (u, v), each covering all N*Ho*Wo windows at once.

    Args:
        dcols: (N*Ho*Wo, Fh*Fw*D) gradient with respect to the columns.
        xp_shape: (N, Hp, Wp, D) shape of the padded input.

    Returns:
        dxp: (N, Hp, Wp, D), gradient with respect to the padded input.
    """
    n, _, _, d = xp_shape
    (fh, fw), (sh, sw), (dh, dw), (ho, wo) = kernel, strides, dilations, out_hw
    d6 = dcols.reshape(n, ho, wo, fh, fw, d)
    dxp = np.zeros(xp_shape, dtype=dcols.dtype)
    for u in range(fh):
        for v in range(fw):
            r, c = u * dh, v * dw
            dxp[:, r : r + sh * (ho - 1) + 1 : sh, c : c + sw * (wo - 1) + 1 : sw, :] += d6[
                :, :, :, u, v, :
            ]
    return dxp
