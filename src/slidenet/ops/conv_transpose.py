"""Transposed convolution ("deconvolution"): the input gradient of a convolution, used as a layer.

A strided convolution maps a large input to a small output. Its transpose goes the other way: every
input pixel x[n, i, j, :] is multiplied by every filter tap and *spread* onto the output window it
would have been read from,

    y_full[n, i*sh + u*dh, j*sw + v*dw, k] += sum_d x[n, i, j, d] * w[u, v, k, d]

which is exactly how :func:`slidenet.ops.conv2d_backward` sends dy back to dx. So the forward pass
below *is* the input-gradient machinery of :mod:`slidenet.ops.conv` (one GEMM per filter tap, added
onto strided slices), with x in the place of dy; the kernel is stored as Keras stores it,
(Fh, Fw, K_out, D_in): the kernel of the convolution whose transpose this is. And the backward pass
is an ordinary convolution: dx = conv2d(dy, w), dw its weight gradient with x in the place of dy.

Output size per axis (n inputs, window F_eff = (F - 1)*d + 1, stride S): the full spread covers

    n_full = (n - 1)*S + F_eff

positions; the output is a window of it (cropped at the start and end, or extended with zeros at
the end), sized as Keras 3 sizes it:

- 'valid': nothing cropped, n_out = (n - 1)*S + F_eff + output_padding, where output_padding
  defaults to max(S - F_eff, 0), so that n_out = (n - 1)*S + max(F_eff, S).
- 'same': n_out = n*S (output_padding None) or (n - 1)*S + F_eff % 2 + output_padding; the
  n_full - n_out positions cropped are split as TensorFlow splits 'same' padding: the smaller half
  at the start. This is the input gradient of a 'same' convolution of an n_out input.
- an int P, a pair (P_before, P_after) or one pair per axis (PyTorch's ``padding``): crop P_before
  and P_after, n_out = (n - 1)*S + F_eff - P_before - P_after + output_padding (default 0), the
  lecture formula (n - 1)*S + F - 2P (+ output_padding) for symmetric P.

output_padding must be smaller than the stride: a strided convolution maps S input sizes onto the
same output size, and output_padding picks one of them.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from slidenet._validation import fmt_shape, int_tuple
from slidenet.ops.conv import Conv2DCache, conv2d_backward, conv2d_forward, conv2d_input_grad
from slidenet.ops.shapes import effective_size, resolve_padding


class TransposeGeometry(NamedTuple):
    """Per spatial axis: where the output starts in the full spread, its size, the full size."""

    starts: tuple
    strides: tuple
    dilations: tuple
    out: tuple  # (Ho, Wo) or (Lo,)
    full: tuple  # (n - 1)*S + F_eff per axis


class ConvTranspose2DCache(NamedTuple):
    """What conv_transpose2d_backward needs: the input, the kernel and the geometry."""

    x: np.ndarray  # (N, H, W, D_in)
    w: np.ndarray  # (Fh, Fw, K_out, D_in)
    has_bias: bool
    geometry: TransposeGeometry


def _axis_output(n, f, s, d, padding, op):
    """(start, n_out, n_full) of one axis; padding is 'valid', 'same' or a (before, after) pair."""
    fe = effective_size(f, d)
    full = (n - 1) * s + fe
    if padding == "valid":
        out = full + (max(s - fe, 0) if op is None else op)
        return 0, out, full
    if padding == "same":
        out = n * s if op is None else (n - 1) * s + fe % 2 + op
        return max(full - out, 0) // 2, out, full
    before, after = padding
    return before, full - before - after + (op or 0), full


def _axis_formula(n, f, s, d, padding, op) -> str:
    """The output-size arithmetic of one axis as text, e.g. '(3 - 1)*2 + 3 - 1 - 1 + 1'."""
    fe = effective_size(f, d)
    text = f"({n} - 1)*{s} + {fe}"
    if padding == "same":
        return f"{n}*{s}" if op is None else f"({n} - 1)*{s} + {fe} % 2 + {op}"
    if padding == "valid":
        op = max(s - fe, 0) if op is None else op
    else:
        text += "".join(f" - {p}" for p in padding if p)
    return text + (f" + {op}" if op else "")


def conv_transpose_geometry(
    in_sizes,
    kernel,
    stride=1,
    padding="valid",
    output_padding=None,
    dilation=1,
    who="conv_transpose",
) -> TransposeGeometry:
    """Check a transposed convolution's arguments and work out its output (any number of axes).

    Args:
        in_sizes: the spatial input sizes, (H, W) or (L,). kernel: (Fh, Fw) or (F,).
        stride, dilation: int or one per axis. output_padding: None, an int or one per axis, each
            smaller than its stride. padding: 'valid', 'same', an int P, one int per axis, or one
            (before, after) pair per axis.

    Raises:
        ValueError: naming ``who``, with the arithmetic, when the output would be empty or
            output_padding is not smaller than the stride.

    >>> conv_transpose_geometry((4, 4), (3, 3), stride=2, padding="same").out
    (8, 8)
    >>> conv_transpose_geometry((4,), (3,), stride=2, padding=1, output_padding=1).out
    (8,)
    """
    rank = len(in_sizes)
    strides = int_tuple(stride, rank, f"{who}: strides")
    dilations = int_tuple(dilation, rank, f"{who}: dilation_rate")
    ops = check_output_padding(output_padding, strides, who)
    if isinstance(padding, str) and padding.lower() in ("valid", "same"):
        pads = (padding.lower(),) * rank
    else:
        ones = (1,) * rank
        pads = resolve_padding(padding, ones, ones, ones, ones, f"{who}: padding")
    geo = [
        _axis_output(*args)
        for args in zip(in_sizes, kernel, strides, dilations, pads, ops, strict=True)
    ]
    starts, out, full = (tuple(g[i] for g in geo) for i in range(3))
    if min(out) < 1:
        axis = out.index(min(out))
        args = (in_sizes[axis], kernel[axis], strides[axis], dilations[axis], pads[axis])
        math = _axis_formula(*args, ops[axis])
        raise ValueError(
            f"{who}: kernel {'x'.join(map(str, kernel))} on input {'x'.join(map(str, in_sizes))} "
            f"with padding={padding!r} leaves no output: {math} = {out[axis]} < 1. "
            "Use less padding, a larger output_padding or a larger kernel."
        )
    return TransposeGeometry(starts, strides, dilations, out, full)


def check_output_padding(output_padding, strides, who) -> tuple:
    """output_padding as one int (or None) per axis, each in [0, stride); else a ValueError."""
    rank = len(strides)
    if output_padding is None:
        return (None,) * rank
    what = f"{who}: output_padding"
    scalar = isinstance(output_padding, int | np.integer)
    values = (output_padding,) * rank if scalar else output_padding
    try:
        values = tuple(values)
    except TypeError:
        values = ()
    if len(values) != rank or any(
        isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 0 for v in values
    ):
        raise ValueError(
            f"{what} must be None, an int >= 0 or {rank} of them, got {output_padding!r}."
        )
    if any(v >= s for v, s in zip(values, strides, strict=True)):
        raise ValueError(
            f"{what} {tuple(values)} must be smaller than strides {tuple(strides)} on every axis "
            "(a convolution with stride S maps S input sizes to one output size; output_padding "
            f"picks one of them). Use output_padding < stride, e.g. output_padding="
            f"{tuple(min(v, s - 1) for v, s in zip(values, strides, strict=True))}, or None."
        )
    return tuple(int(v) for v in values)


def _check_args(x, w, b, who, layout=("(N, H, W, D_in)", "(Fh, Fw, K_out, D_in)")):
    rank = layout[0].count(",") + 1
    if x.ndim != rank:
        raise ValueError(f"{who}: x must be {layout[0]}, got shape {fmt_shape(x.shape)}.")
    if w.ndim != rank:
        raise ValueError(f"{who}: w must be {layout[1]}, got shape {fmt_shape(w.shape)}.")
    if w.shape[-1] != x.shape[-1]:
        raise ValueError(
            f"{who}: the kernel's last axis (D_in = {w.shape[-1]}) must equal the input depth "
            f"{x.shape[-1]} (x {fmt_shape(x.shape)}, w {fmt_shape(w.shape)}); a transposed "
            "convolution kernel is (..., K_out, D_in)."
        )
    if b is not None and b.shape != (w.shape[-2],):
        raise ValueError(f"{who}: b must have shape ({w.shape[-2]},), got {fmt_shape(b.shape)}.")


def _spread(x, w, b, geo: TransposeGeometry):
    """The forward pass on an NHWC batch: conv2d's input gradient with x as dy, then the crop."""
    n, h, wd, d_in = x.shape
    k = w.shape[2]
    (th, tw), (ho, wo) = geo.starts, geo.out
    buf = (n, max(geo.full[0], th + ho), max(geo.full[1], tw + wo), k)
    fake = Conv2DCache(None, None, w, False, buf, ((0, 0), (0, 0)), geo.strides, geo.dilations,
                       (h, wd))  # fmt: skip
    y_full = conv2d_input_grad(x.reshape(-1, d_in), fake)
    y = np.ascontiguousarray(y_full[:, th : th + ho, tw : tw + wo, :])
    if b is not None:
        y += b.astype(x.dtype, copy=False)
    return y


def _gather(dy, cache: ConvTranspose2DCache, need_dx):
    """The backward pass: place dy in the full spread, then one convolution gives dx and dw."""
    geo, x, w = cache.geometry, cache.x, cache.w
    (th, tw), (ho, wo), (fh, fw) = geo.starts, geo.out, geo.full
    dy_full = np.zeros((dy.shape[0], fh, fw, dy.shape[3]), dy.dtype)
    rows, cols = min(ho, fh - th), min(wo, fw - tw)  # outputs past the full spread got no input
    dy_full[:, th : th + rows, tw : tw + cols, :] = dy[:, :rows, :cols, :]
    dx, conv_cache = conv2d_forward(dy_full, w, stride=geo.strides, dilation=geo.dilations)
    _, dw, _ = conv2d_backward(x.astype(dy.dtype, copy=False), conv_cache, need_dx=False)
    db = dy.sum(axis=(0, 1, 2)) if cache.has_bias else None
    return (dx if need_dx else None), dw, db


def conv_transpose2d_forward(
    x, w, b=None, *, stride=1, padding="valid", output_padding=None, dilation=1
):
    """2D transposed convolution of an NHWC batch (Keras' Conv2DTranspose).

    Args:
        x: input (N, H, W, D_in).
        w: kernel (Fh, Fw, K_out, D_in), as Keras stores it.
        b: bias (K_out,) or None.
        stride: int or (sh, sw). dilation: int or (dh, dw).
        padding: 'valid', 'same' (Keras' rules), or PyTorch-style crops: P, (Ph, Pw) or
            ((top, bottom), (left, right)).
        output_padding: None or an int / pair, each smaller than its stride (added at the end).

    Returns:
        y: (N, Ho, Wo, K_out) in x's dtype, and the cache for :func:`conv_transpose2d_backward`.
    """
    _check_args(x, w, b, "conv_transpose2d")
    geo = conv_transpose_geometry(
        x.shape[1:3], w.shape[:2], stride, padding, output_padding, dilation, "conv_transpose2d"
    )
    y = _spread(x, w, b, geo)
    return y, ConvTranspose2DCache(x, w, b is not None, geo)


def conv_transpose2d_backward(dy, cache: ConvTranspose2DCache, need_dx=True):
    """Gradients of :func:`conv_transpose2d_forward`, by one ordinary convolution of dy.

    Args:
        dy: (N, Ho, Wo, K_out). need_dx: False skips dx.

    Returns:
        dx (N, H, W, D_in) or None, dw (Fh, Fw, K_out, D_in), db (K_out,) or None.
    """
    return _gather(dy, cache, need_dx)


def conv_transpose2d(x, w, b=None, stride=1, padding="valid", output_padding=None, dilation=1):
    """Transposed convolution y (N, Ho, Wo, K_out) of x (N, H, W, D_in), w (Fh, Fw, K_out, D_in).

    >>> x = np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 2, 2, 1)
    >>> conv_transpose2d(x, np.ones((2, 2, 1, 1)), stride=2)[0, :, :, 0]   # each pixel -> 2x2
    array([[1., 1., 2., 2.],
           [1., 1., 2., 2.],
           [3., 3., 4., 4.],
           [3., 3., 4., 4.]])
    """
    return conv_transpose2d_forward(
        x, w, b, stride=stride, padding=padding, output_padding=output_padding, dilation=dilation
    )[0]


class ConvTranspose1DCache(NamedTuple):
    """conv_transpose1d runs the 2D op on a height-1 image; this wraps that cache."""

    conv_transpose2d: ConvTranspose2DCache


def conv_transpose1d_forward(
    x, w, b=None, *, stride=1, padding="valid", output_padding=None, dilation=1
):
    """1D transposed convolution (Keras' Conv1DTranspose) of an NLC batch.

    Args:
        x: input (N, L, D_in). w: kernel (F, K_out, D_in). b: (K_out,) or None.
        stride, dilation, output_padding: ints (output_padding < stride, or None).
        padding: 'valid', 'same', an int P or a pair (before, after).

    Returns:
        y: (N, Lo, K_out), and the cache for :func:`conv_transpose1d_backward`.
    """
    who = "conv_transpose1d"
    _check_args(x, w, b, who, ("(N, L, D_in)", "(F, K_out, D_in)"))
    spec = (tuple(padding),) if isinstance(padding, list | tuple) else padding
    geo = conv_transpose_geometry(
        x.shape[1:2], w.shape[:1], stride, spec, output_padding, dilation, who
    )
    geo2 = TransposeGeometry(*((1, *v) if i else (0, *v) for i, v in enumerate(geo)))
    y = _spread(x[:, None], w[None], b, geo2)
    return y[:, 0], ConvTranspose1DCache(ConvTranspose2DCache(x[:, None], w[None], b is not None,
                                                              geo2))  # fmt: skip


def conv_transpose1d_backward(dy, cache: ConvTranspose1DCache, need_dx=True):
    """Gradients of :func:`conv_transpose1d_forward`: dx (N, L, D_in) or None, dw (F, K_out, D_in),
    db (K_out,) or None."""
    dx, dw, db = _gather(dy[:, None], cache.conv_transpose2d, need_dx)
    return (dx[:, 0] if need_dx else None), dw[0], db


def conv_transpose1d(x, w, b=None, stride=1, padding="valid", output_padding=None, dilation=1):
    """1D transposed convolution y (N, Lo, K_out) of x (N, L, D_in) with w (F, K_out, D_in)."""
    return conv_transpose1d_forward(
        x, w, b, stride=stride, padding=padding, output_padding=output_padding, dilation=dilation
    )[0]
