"""Textbook loop versions of the transposed, depthwise, separable and grouped convolutions.

The companion of :mod:`slidenet.ops.reference` (same conventions: NHWC, slow, for small inputs, the
tests' reference). The transposed convolution is written here the *other* way round from
:mod:`slidenet.ops.conv_transpose`: as a "fractionally strided" convolution (put S - 1 zeros
between the input pixels, pad, correlate with the flipped kernel), with Keras' own padding rule,
so that the two implementations check each other.

>>> x = np.array([1.0, 2.0]).reshape(1, 1, 2, 1)
>>> conv_transpose2d(x, np.ones((1, 2, 1, 1)), stride=(1, 2))[0, 0, :, 0]
array([1., 1., 2., 2.])
"""

import numpy as np

from slidenet.ops.reference import _geometry, conv2d


def _pair(v):
    return (v, v) if isinstance(v, int | np.integer) else tuple(v)


# -------------------------------------------------------------------------- transposed convolution


def keras_transpose_pads(n, f, stride, dilation, padding, output_padding):
    """Keras 3's padding of the zero-stuffed input along one axis: (left, right).

    The input with S - 1 zeros between pixels has (n - 1)*S + 1 entries; padded with (left, right)
    and correlated with the flipped kernel (extent F_eff) it gives (n - 1)*S + 1 + left + right -
    F_eff + 1 outputs. A negative pad crops. padding is 'valid', 'same' or (before, after) crops.
    """
    fe = (f - 1) * dilation + 1
    op = output_padding
    if padding == "valid":
        op = max(fe, stride) - fe if op is None else op
        return fe - 1, fe - 1 + op
    if padding == "same":
        pad_len = stride + fe - 2 if op is None else fe + fe % 2 - 2 + op
        left = min(pad_len // 2 + pad_len % 2, fe - 1)
        return left, pad_len - left
    before, after = padding
    return fe - 1 - before, fe - 1 - after + (op or 0)


def _transpose_pads(x_shape, w_shape, stride, padding, output_padding, dilation):
    strides, dilations = _pair(stride), _pair(dilation)
    if isinstance(padding, str):
        specs = (padding,) * 2
    elif isinstance(padding, int):
        specs = ((padding, padding),) * 2
    else:
        specs = tuple(_pair(p) for p in padding)
    ops = (output_padding,) * 2 if output_padding is None else _pair(output_padding)
    pads = tuple(
        keras_transpose_pads(n, f, s, d, p, op)
        for n, f, s, d, p, op in zip(x_shape[1:3], w_shape[:2], strides, dilations, specs, ops,
                                     strict=True)
    )  # fmt: skip
    return pads, strides, dilations


def _pad_or_crop(a, axis, before, after):
    """Zero-pad (positive) or crop (negative) ``a`` along ``axis``."""
    a = np.moveaxis(a, axis, 0)
    a = a[max(-before, 0) : a.shape[0] - max(-after, 0)]
    a = np.pad(a, [(max(before, 0), max(after, 0))] + [(0, 0)] * (a.ndim - 1))
    return np.moveaxis(a, 0, axis)


def conv_transpose2d(x, w, b=None, stride=1, padding="valid", output_padding=None, dilation=1):
    """Transposed convolution of x (N, H, W, D_in), w (Fh, Fw, K_out, D_in) -> (N, Ho, Wo, K_out).

    The fractionally strided form: stuff S - 1 zeros between the pixels, pad by Keras' rule, then
    an ordinary convolution with the kernel flipped in space and its channel axes swapped.
    """
    (pads, (sh, sw), dilations) = _transpose_pads(
        x.shape, w.shape, stride, padding, output_padding, dilation
    )
    n, h, wd, d = x.shape
    stuffed = np.zeros((n, (h - 1) * sh + 1, (wd - 1) * sw + 1, d), x.dtype)
    stuffed[:, ::sh, ::sw, :] = x
    for axis, (before, after) in zip((1, 2), pads, strict=True):
        stuffed = _pad_or_crop(stuffed, axis, before, after)
    flipped = w[::-1, ::-1].transpose(0, 1, 3, 2)  # (Fh, Fw, D_in, K_out)
    return conv2d(stuffed, flipped, b, 1, "valid", dilations)


def conv_transpose2d_backward(x, w, dy, stride=1, padding="valid", output_padding=None,
                              dilation=1):  # fmt: skip
    """Gradients of :func:`conv_transpose2d`: (dx like x, dw like w, db (K_out,)).

    Input pixel (i, j) and tap (u, v) wrote w[u, v] @ x[n, i, j] onto output position
    (i*sh + u*dh - top, j*sw + v*dw - left), where top/left is what Keras crops at the start; the
    gradients flow back along the same lines.
    """
    fh, fw, _, _ = w.shape
    pads, (sh, sw), (dh, dw_) = _transpose_pads(
        x.shape, w.shape, stride, padding, output_padding, dilation
    )
    top, left = ((f - 1) * r - p[0] for f, r, p in zip((fh, fw), (dh, dw_), pads, strict=True))
    dx, dw = np.zeros_like(x), np.zeros_like(w)
    n_, h, wd, _ = x.shape
    for n in range(n_):
        for i in range(h):
            for j in range(wd):
                for u in range(fh):
                    for v in range(fw):
                        p, q = i * sh + u * dh - top, j * sw + v * dw_ - left
                        if 0 <= p < dy.shape[1] and 0 <= q < dy.shape[2]:
                            g = dy[n, p, q]  # (K_out,)
                            dx[n, i, j] += w[u, v].T @ g
                            dw[u, v] += np.outer(g, x[n, i, j])
    return dx, dw, dy.sum(axis=(0, 1, 2))


def conv_transpose1d(x, w, b=None, stride=1, padding="valid", output_padding=None, dilation=1):
    """Transposed convolution of a signal x (N, L, D_in), w (F, K_out, D_in): a height-1 image."""
    spec = padding if isinstance(padding, str | int) else ((0, 0), tuple(padding))
    spec = ((0, 0), (spec, spec)) if isinstance(spec, int) else spec
    op = None if output_padding is None else (0, output_padding)
    return conv_transpose2d(x[:, None], w[None], b, (1, stride), spec, op, (1, dilation))[:, 0]


def conv_transpose1d_backward(x, w, dy, stride=1, padding="valid", output_padding=None,
                              dilation=1):  # fmt: skip
    """Gradients of :func:`conv_transpose1d`: (dx like x, dw like w, db)."""
    spec = padding if isinstance(padding, str | int) else ((0, 0), tuple(padding))
    spec = ((0, 0), (spec, spec)) if isinstance(spec, int) else spec
    op = None if output_padding is None else (0, output_padding)
    dx, dw, db = conv_transpose2d_backward(
        x[:, None], w[None], dy[:, None], (1, stride), spec, op, (1, dilation)
    )
    return dx[:, 0], dw[0], db


# ----------------------------------------------------------------- depthwise, separable, grouped


def _windows(x, kernel, stride, padding, dilation):
    """Yield (n, i, j, window (Fh, Fw, D)) over every output position, and the padded geometry."""
    pads, (sh, sw), (rh, rw), (ho, wo) = _geometry(x.shape, kernel, stride, padding, dilation)
    xp = np.pad(x, ((0, 0), *pads, (0, 0)))
    for n in range(x.shape[0]):
        for i in range(ho):
            for j in range(wo):
                rows = slice(i * sh, i * sh + (kernel[0] - 1) * rh + 1, rh)
                cols = slice(j * sw, j * sw + (kernel[1] - 1) * rw + 1, rw)
                yield n, i, j, rows, cols, xp


def depthwise_conv2d(x, w, b=None, stride=1, padding="valid", dilation=1):
    """y[n, i, j, d*M + m] = b[d*M + m] + sum_{u,v} window[u, v, d] * w[u, v, d, m]."""
    fh, fw, d_in, m_ = w.shape
    _, _, _, (ho, wo) = _geometry(x.shape, (fh, fw), stride, padding, dilation)
    y = np.zeros((x.shape[0], ho, wo, d_in * m_), x.dtype)
    for n, i, j, rows, cols, xp in _windows(x, (fh, fw), stride, padding, dilation):
        for d in range(d_in):
            for m in range(m_):
                value = np.sum(xp[n, rows, cols, d] * w[:, :, d, m])
                y[n, i, j, d * m_ + m] = value + (0 if b is None else b[d * m_ + m])
    return y


def depthwise_conv2d_backward(x, w, dy, stride=1, padding="valid", dilation=1):
    """Gradients of :func:`depthwise_conv2d`: (dx, dw, db); each channel on its own."""
    fh, fw, d_in, m_ = w.shape
    pads, _, _, _ = _geometry(x.shape, (fh, fw), stride, padding, dilation)
    dxp, dw = None, np.zeros_like(w)
    for n, i, j, rows, cols, xp in _windows(x, (fh, fw), stride, padding, dilation):
        dxp = np.zeros_like(xp) if dxp is None else dxp
        for d in range(d_in):
            for m in range(m_):
                g = dy[n, i, j, d * m_ + m]
                dw[:, :, d, m] += g * xp[n, rows, cols, d]
                dxp[n, rows, cols, d] += g * w[:, :, d, m]
    (pt, pb), (pl, pr) = pads
    dx = dxp[:, pt : dxp.shape[1] - pb, pl : dxp.shape[2] - pr, :]
    return dx, dw, dy.sum(axis=(0, 1, 2))


def separable_conv2d(x, depthwise_kernel, pointwise_kernel, b=None, stride=1, padding="valid",
                     dilation=1):  # fmt: skip
    """A depthwise convolution, then a 1x1 convolution (pointwise_kernel (1, 1, D*M, K)) + b."""
    z = depthwise_conv2d(x, depthwise_kernel, None, stride, padding, dilation)
    return conv2d(z, pointwise_kernel, b)


def separable_conv2d_backward(x, depthwise_kernel, pointwise_kernel, dy, stride=1,
                              padding="valid", dilation=1):  # fmt: skip
    """Gradients of :func:`separable_conv2d`: (dx, d depthwise_kernel, d pointwise_kernel, db)."""
    from slidenet.ops.reference import conv2d_backward

    z = depthwise_conv2d(x, depthwise_kernel, None, stride, padding, dilation)
    dz, dpk, db = conv2d_backward(z, pointwise_kernel, dy)
    dx, ddk, _ = depthwise_conv2d_backward(x, depthwise_kernel, dz, stride, padding, dilation)
    return dx, ddk, dpk, db


def conv2d_grouped(x, w, b=None, groups=1, stride=1, padding="valid", dilation=1):
    """Filter k belongs to group g = k // (K/G) and sees input channels g*D/G ... (g+1)*D/G - 1."""
    fh, fw, dg, k_out = w.shape
    kg = k_out // groups
    _, _, _, (ho, wo) = _geometry(x.shape, (fh, fw), stride, padding, dilation)
    y = np.zeros((x.shape[0], ho, wo, k_out), x.dtype)
    for n, i, j, rows, cols, xp in _windows(x, (fh, fw), stride, padding, dilation):
        for k in range(k_out):
            g = k // kg
            window = xp[n, rows, cols, g * dg : (g + 1) * dg]
            y[n, i, j, k] = np.sum(window * w[:, :, :, k]) + (0 if b is None else b[k])
    return y


def conv2d_grouped_backward(x, w, dy, groups=1, stride=1, padding="valid", dilation=1):
    """Gradients of :func:`conv2d_grouped`: (dx, dw, db)."""
    fh, fw, dg, k_out = w.shape
    kg = k_out // groups
    pads, _, _, _ = _geometry(x.shape, (fh, fw), stride, padding, dilation)
    dxp, dw = None, np.zeros_like(w)
    for n, i, j, rows, cols, xp in _windows(x, (fh, fw), stride, padding, dilation):
        dxp = np.zeros_like(xp) if dxp is None else dxp
        for k in range(k_out):
            g, channels = dy[n, i, j, k], slice(k // kg * dg, (k // kg + 1) * dg)
            dw[:, :, :, k] += g * xp[n, rows, cols, channels]
            dxp[n, rows, cols, channels] += g * w[:, :, :, k]
    (pt, pb), (pl, pr) = pads
    dx = dxp[:, pt : dxp.shape[1] - pb, pl : dxp.shape[2] - pr, :]
    return dx, dw, dy.sum(axis=(0, 1, 2))


# ------------------------------------------------------- 3D convolution and pooling (NDHWC volumes)
# x (N, Z, H, W, D), w (Fz, Fh, Fw, D, K); 'same' as TensorFlow: ceil(n / s) outputs, the extra
# padding cell at the end. Written out again here (not taken from ops.shapes) so the two check
# each other.


def _triple(v):
    return (v,) * 3 if isinstance(v, int | np.integer) else tuple(v)


def _geometry3d(sizes, kernel, stride, padding, dilation):
    """Explicit ((before, after),) * 3 pads, strides, dilations and the output size (Zo, Ho, Wo)."""
    strides, dilations = _triple(stride), _triple(dilation)
    extents = [(f - 1) * r + 1 for f, r in zip(kernel, dilations, strict=True)]
    if padding == "valid":
        pads = ((0, 0),) * 3
    elif padding == "same":
        totals = [
            max((-(-n // s) - 1) * s + e - n, 0)
            for n, s, e in zip(sizes, strides, extents, strict=True)
        ]
        pads = tuple((t // 2, t - t // 2) for t in totals)
    else:
        pads = tuple((p, p) if isinstance(p, int) else tuple(p) for p in _triple(padding))
    out = tuple(
        (n + a + b - e) // s + 1
        for n, (a, b), e, s in zip(sizes, pads, extents, strides, strict=True)
    )
    return pads, strides, dilations, out


def _volume_windows(x, kernel, stride, padding, dilation):
    """Yield (n, t, i, j, index, xp): every window of the zero-padded volume xp as an index."""
    pads, strides, dilations, out = _geometry3d(x.shape[1:4], kernel, stride, padding, dilation)
    xp = np.pad(x, ((0, 0), *pads, (0, 0)))
    for n in range(x.shape[0]):
        for t, i, j in np.ndindex(*out):
            index = tuple(
                slice(o * s, o * s + (f - 1) * r + 1, r)
                for o, s, f, r in zip((t, i, j), strides, kernel, dilations, strict=True)
            )
            yield n, t, i, j, index, xp


def conv3d(x, w, b=None, stride=1, padding="valid", dilation=1):
    """3D convolution (cross-correlation) of x (N, Z, H, W, D) with K filters w (Fz, Fh, Fw, D, K).

    y[n, t, i, j, k] = b[k] + sum_{s, u, v, d} xp[n, t*sz + s*rz, i*sh + u*rh, j*sw + v*rw, d]
                                               * w[s, u, v, d, k]
    """
    k_out = w.shape[4]
    _, _, _, out = _geometry3d(x.shape[1:4], w.shape[:3], stride, padding, dilation)
    y = np.zeros((x.shape[0], *out, k_out), x.dtype)
    for n, t, i, j, index, xp in _volume_windows(x, w.shape[:3], stride, padding, dilation):
        window = xp[(n, *index)]  # (Fz, Fh, Fw, D)
        for k in range(k_out):
            y[n, t, i, j, k] = np.sum(window * w[..., k]) + (0 if b is None else b[k])
    return y


def conv3d_backward(x, w, dy, stride=1, padding="valid", dilation=1):
    """Gradients of :func:`conv3d`: (dx, dw, db), each window's share added back one by one."""
    pads, _, _, _ = _geometry3d(x.shape[1:4], w.shape[:3], stride, padding, dilation)
    dxp, dw = None, np.zeros_like(w)
    for n, t, i, j, index, xp in _volume_windows(x, w.shape[:3], stride, padding, dilation):
        dxp = np.zeros_like(xp) if dxp is None else dxp
        for k in range(w.shape[4]):
            g = dy[n, t, i, j, k]
            dw[..., k] += g * xp[(n, *index)]
            dxp[(n, *index)] += g * w[..., k]
    inner = tuple(slice(a, m - b) for (a, b), m in zip(pads, dxp.shape[1:4], strict=True))
    return dxp[(slice(None), *inner)], dw, dy.sum(axis=(0, 1, 2, 3))


def _pool3d_windows(x_shape, pool_size, stride, padding):
    """Yield ((t, i, j), ranges): each output position and the real input cells of its window."""
    pool = _triple(pool_size)
    pads, strides, _, out = _geometry3d(
        x_shape[1:4], pool, pool if stride is None else stride, padding, 1
    )
    for o in np.ndindex(*out):
        corners = [c * s - a for c, s, (a, _) in zip(o, strides, pads, strict=True)]
        yield (
            o,
            [
                range(max(c, 0), min(c + p, n))
                for c, p, n in zip(corners, pool, x_shape[1:4], strict=True)
            ],
        )


def pool3d(x, pool_size, stride=None, padding="valid", kind="max"):
    """Max or average of each window's real cells, per channel: x (N, Z, H, W, D) -> y."""
    windows = list(_pool3d_windows(x.shape, pool_size, stride, padding))
    y = np.zeros((x.shape[0], *(c + 1 for c in windows[-1][0]), x.shape[4]), x.dtype)
    for n in range(x.shape[0]):
        for o, ranges in windows:
            for d in range(x.shape[4]):
                cells = [
                    x[(n, t, i, j, d)] for t in ranges[0] for i in ranges[1] for j in ranges[2]
                ]
                y[(n, *o, d)] = max(cells) if kind == "max" else sum(cells) / len(cells)
    return y


def pool3d_backward(x, dy, pool_size, stride=None, padding="valid", kind="max"):
    """dx of :func:`pool3d`: max sends dy to the window's first largest cell, avg dy / count to
    each real cell; overlapping windows add up."""
    dx = np.zeros(x.shape, dy.dtype)
    for n in range(x.shape[0]):
        for o, ranges in _pool3d_windows(x.shape, pool_size, stride, padding):
            cells = [(t, i, j) for t in ranges[0] for i in ranges[1] for j in ranges[2]]
            for d in range(x.shape[4]):
                g = dy[(n, *o, d)]
                if kind == "max":
                    values = [x[(n, *c, d)] for c in cells]
                    dx[(n, *cells[values.index(max(values))], d)] += g
                else:
                    for c in cells:
                        dx[(n, *c, d)] += g / len(cells)
    return dx


# --------------------------------------------------------- upsampling, zero padding and cropping
# x (N, *spatial, D); pads / crops are one (before, after) pair per spatial axis.


def _source(o, s, n, interpolation):
    """[(input cell, weight), ...] that output cell o of an axis of n cells upsampled by s reads."""
    if interpolation == "nearest":
        return [(o // s, 1.0)]
    src = max((o + 0.5) / s - 0.5, 0.0)  # half-pixel centres, clamped at the start
    i0 = min(int(np.floor(src)), n - 1)
    i1 = min(i0 + 1, n - 1)  # clamped at the end
    return [(i0, 1.0 - (src - i0)), (i1, src - i0)]


def _reads(o, size, sizes, interpolation):
    """Yield (weight, input cell) for every corner around output cell o's source point."""
    per_axis = [_source(c, s, m, interpolation) for c, s, m in zip(o, size, sizes, strict=True)]
    for corner in np.ndindex(*(len(p) for p in per_axis)):
        picked = [per_axis[axis][pick] for axis, pick in enumerate(corner)]
        yield float(np.prod([wgt for _, wgt in picked])), tuple(index for index, _ in picked)


def upsample(x, size, interpolation="nearest"):
    """y[n, *o, d] = sum over the corners around o's source point of weight * x[n, *corner, d]."""
    sizes = x.shape[1:-1]
    size = (size,) * len(sizes) if isinstance(size, int) else tuple(size)
    y = np.zeros((x.shape[0], *(m * s for m, s in zip(sizes, size, strict=True)), x.shape[-1]))
    for o in np.ndindex(*y.shape[1:-1]):
        for weight, cell in _reads(o, size, sizes, interpolation):
            y[(slice(None), *o)] += weight * x[(slice(None), *cell)]
    return y.astype(x.dtype)


def upsample_backward(x_shape, dy, size, interpolation="nearest"):
    """dx of :func:`upsample`: each dy cell's weighted share added onto the cells it read."""
    sizes = x_shape[1:-1]
    size = (size,) * len(sizes) if isinstance(size, int) else tuple(size)
    dx = np.zeros(x_shape, dy.dtype)
    for o in np.ndindex(*dy.shape[1:-1]):
        for weight, cell in _reads(o, size, sizes, interpolation):
            dx[(slice(None), *cell)] += weight * dy[(slice(None), *o)]
    return dx


def zero_pad(x, pads):
    """y: zeros of the padded size, with x copied in cell by cell at offset (before, ...)."""
    y = np.zeros((x.shape[0], *(m + a + b for m, (a, b) in zip(x.shape[1:-1], pads, strict=True)),
                  x.shape[-1]), x.dtype)  # fmt: skip
    for c in np.ndindex(*x.shape[1:-1]):
        y[(slice(None), *(i + a for i, (a, _) in zip(c, pads, strict=True)))] = x[(slice(None), *c)]
    return y


def crop_border(x, pads):
    """y[n, *c, d] = x[n, *(c + before), d] over the cells that remain after the crop."""
    shape = [m - a - b for m, (a, b) in zip(x.shape[1:-1], pads, strict=True)]
    y = np.zeros((x.shape[0], *shape, x.shape[-1]), x.dtype)
    for c in np.ndindex(*shape):
        y[(slice(None), *c)] = x[(slice(None), *(i + a for i, (a, _) in zip(c, pads, strict=True)))]
    return y
