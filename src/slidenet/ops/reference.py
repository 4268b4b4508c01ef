"""Textbook loop versions of every op: the readable definition of the math and the tests' reference.

Each function loops over output positions in plain Python with at most a small NumPy product per
window, so the code reads like the lectures' formulas. Slow, for small inputs: for teaching and for
checking the fast :mod:`slidenet.ops`, which must agree with these to float precision. NHWC shapes:
x (N, H, W, D), w (Fh, Fw, D, K), b (K,), y (N, Ho, Wo, K). Padding as in :mod:`slidenet.ops.shapes`
('same' as TensorFlow: the extra zero goes bottom/right).

>>> x = np.array([[1, 1, 2, 4], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]], float)
>>> max_pool2d(x.reshape(1, 4, 4, 1), 2)[0, :, :, 0]
array([[6., 8.],
       [3., 4.]])
"""

import math

import numpy as np

from slidenet.ops.shapes import resolve_padding


def _pair(v):
    return (v, v) if isinstance(v, int | np.integer) else tuple(v)


def _geometry(x_shape, kernel, stride, padding, dilation):
    """Explicit pads ((pt, pb), (pl, pr)), strides, dilations and the output size (Ho, Wo)."""
    strides, dilations = _pair(stride), _pair(dilation)
    pads = resolve_padding(padding, x_shape[1:3], kernel, strides, dilations)
    out = tuple(
        (n + p0 + p1 - ((f - 1) * r + 1)) // s + 1  # (n - F_eff + P)/S + 1, partial windows dropped
        for n, (p0, p1), f, s, r in zip(x_shape[1:3], pads, kernel, strides, dilations, strict=True)
    )
    return pads, strides, dilations, out


# ----------------------------------------------------------------------------------- convolution


def correlate2d_single(image, kernel):
    """The one-channel picture: slide kernel (Fh, Fw) over image (H, W), 'valid' positions only.

    out[i, j] = sum_{u, v} image[i + u, j + v] * kernel[u, v];  out is (H - Fh + 1, W - Fw + 1).
    Cross-correlation: the kernel is not flipped (convolution proper would flip it).
    """
    fh, fw = kernel.shape
    out = np.zeros((image.shape[0] - fh + 1, image.shape[1] - fw + 1), dtype=image.dtype)
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = np.sum(image[i : i + fh, j : j + fw] * kernel)
    return out


def conv2d(x, w, b=None, stride=1, padding="valid", dilation=1):
    """2D convolution (cross-correlation) of x (N, H, W, D) with K filters w (Fh, Fw, D, K).

    y[n, i, j, k] = b[k] + sum_{u, v, d} xp[n, i*sh + u*rh, j*sw + v*rw, d] * w[u, v, d, k]

    where xp is x zero-padded and (rh, rw) the dilation. y is (N, Ho, Wo, K) with
    Ho = (H + pt + pb - Fh_eff) // sh + 1 and Fh_eff = (Fh - 1) * rh + 1 (Wo likewise).
    """
    fh, fw, _, k_out = w.shape
    pads, (sh, sw), (rh, rw), (ho, wo) = _geometry(x.shape, (fh, fw), stride, padding, dilation)
    xp = np.pad(x, ((0, 0), *pads, (0, 0)))
    y = np.zeros((x.shape[0], ho, wo, k_out), dtype=x.dtype)
    for n in range(x.shape[0]):
        for i in range(ho):
            for j in range(wo):
                # the window under the filter: Fh x Fw taps, every rh-th row and rw-th column
                rows = slice(i * sh, i * sh + (fh - 1) * rh + 1, rh)
                cols = slice(j * sw, j * sw + (fw - 1) * rw + 1, rw)
                for k in range(k_out):
                    window_dot_filter = np.sum(xp[n, rows, cols, :] * w[:, :, :, k])
                    y[n, i, j, k] = window_dot_filter + (0 if b is None else b[k])
    return y


def conv2d_backward(x, w, dy, stride=1, padding="valid", dilation=1):
    """Gradients of :func:`conv2d` given dy (N, Ho, Wo, K): (dx (N, H, W, D), dw like w, db (K,)).

    Every output y[n, i, j, k] came from one window and one filter, so its gradient dy[n, i, j, k]
    flows back along the same lines:
        db[k]      += dy[n, i, j, k]
        dw[..., k] += dy[n, i, j, k] * window    (dw is the correlation of the input with dy)
        dwindow    += dy[n, i, j, k] * w[..., k] (each dy spread back through the weights it met)
    """
    fh, fw, _, k_out = w.shape
    pads, (sh, sw), (rh, rw), (ho, wo) = _geometry(x.shape, (fh, fw), stride, padding, dilation)
    xp = np.pad(x, ((0, 0), *pads, (0, 0)))
    dxp, dw, db = np.zeros_like(xp), np.zeros_like(w), np.zeros(k_out, dtype=dy.dtype)
    for n in range(x.shape[0]):
        for i in range(ho):
            for j in range(wo):
                rows = slice(i * sh, i * sh + (fh - 1) * rh + 1, rh)
                cols = slice(j * sw, j * sw + (fw - 1) * rw + 1, rw)
                for k in range(k_out):
                    g = dy[n, i, j, k]
                    db[k] += g
                    dw[:, :, :, k] += g * xp[n, rows, cols, :]
                    dxp[n, rows, cols, :] += g * w[:, :, :, k]
    (pt, pb), (pl, pr) = pads
    return dxp[:, pt : xp.shape[1] - pb, pl : xp.shape[2] - pr, :], dw, db


def conv1d(x, w, b=None, stride=1, padding="valid", dilation=1):
    """1D convolution of a signal x (N, L, D) with K filters w (F, D, K) -> y (N, Lo, K).

    y[n, i, k] = b[k] + sum_{u, d} xp[n, i*s + u*r, d] * w[u, d, k],  Lo = (L + P - F_eff) // s + 1.
    """
    f, _, k_out = w.shape
    spec = padding if isinstance(padding, str | int) else (tuple(padding),)  # (before, after)
    ((p0, p1),) = resolve_padding(spec, x.shape[1:2], (f,), (stride,), (dilation,))
    xp = np.pad(x, ((0, 0), (p0, p1), (0, 0)))
    lo = (xp.shape[1] - ((f - 1) * dilation + 1)) // stride + 1
    y = np.zeros((x.shape[0], lo, k_out), dtype=x.dtype)
    for n in range(x.shape[0]):
        for i in range(lo):
            window = xp[n, i * stride : i * stride + (f - 1) * dilation + 1 : dilation, :]
            for k in range(k_out):
                y[n, i, k] = np.sum(window * w[:, :, k]) + (0 if b is None else b[k])
    return y


def conv1d_backward(x, w, dy, stride=1, padding="valid", dilation=1):
    """Gradients of :func:`conv1d`: a signal is an image of height 1, so reuse conv2d_backward."""
    pads = padding if isinstance(padding, str) else ((0, 0), _pair(padding))
    dx, dw, db = conv2d_backward(x[:, None], w[None], dy[:, None], (1, stride), pads, (1, dilation))
    return dx[:, 0], dw[0], db


# ------------------------------------------------------------------------------------------ pooling


def _pool_windows(x_shape, pool_size, stride, padding):
    """Yield (i, j, rows, cols): each output position and the real (unpadded) input it pools."""
    pool = _pair(pool_size)
    pads, (sh, sw), _, (ho, wo) = _geometry(
        x_shape, pool, pool if stride is None else stride, padding, 1
    )
    (pt, _), (pl, _) = pads
    for i in range(ho):
        for j in range(wo):
            top, left = i * sh - pt, j * sw - pl  # window corner in unpadded coordinates
            rows = range(max(top, 0), min(top + pool[0], x_shape[1]))
            cols = range(max(left, 0), min(left + pool[1], x_shape[2]))
            yield i, j, rows, cols


def pool2d(x, pool_size, stride=None, padding="valid", kind="max"):
    """Pool each channel of x (N, H, W, D) over pool_size windows -> y (N, Ho, Wo, D).

    y[n, i, j, d] = max / mean / sum of x[n, rows, cols, d] over the window's real elements:
    'same' padding adds no values, so max ignores it and avg divides by the count of real elements.
    stride defaults to pool_size (no overlap).
    """
    reduce = {"max": np.max, "avg": np.mean, "sum": np.sum}[kind]
    windows = list(_pool_windows(x.shape, pool_size, stride, padding))
    ho, wo = windows[-1][0] + 1, windows[-1][1] + 1
    y = np.zeros((x.shape[0], ho, wo, x.shape[3]), dtype=x.dtype)
    for n in range(x.shape[0]):
        for i, j, rows, cols in windows:
            for d in range(x.shape[3]):
                window = x[n, rows.start : rows.stop, cols.start : cols.stop, d]
                y[n, i, j, d] = reduce(window)
    return y


def pool2d_backward(x, dy, pool_size, stride=None, padding="valid", kind="max"):
    """Gradient of :func:`pool2d`: dx (N, H, W, D) from dy (N, Ho, Wo, D).

    max: dy goes to the window's largest element (the first one, row by row, on ties);
    avg: dy / count to each real element; sum: dy to each element. Overlapping windows add up.
    """
    dx = np.zeros(x.shape, dtype=dy.dtype)
    for n in range(x.shape[0]):
        for i, j, rows, cols in _pool_windows(x.shape, pool_size, stride, padding):
            for d in range(x.shape[3]):
                g = dy[n, i, j, d]
                if kind == "max":
                    window = x[n, rows.start : rows.stop, cols.start : cols.stop, d]
                    u, v = np.unravel_index(np.argmax(window), window.shape)
                    dx[n, rows[u], cols[v], d] += g
                else:
                    share = g / (len(rows) * len(cols)) if kind == "avg" else g
                    dx[n, rows.start : rows.stop, cols.start : cols.stop, d] += share
    return dx


def max_pool2d(x, pool_size, stride=None, padding="valid"):
    """Max pooling of x (N, H, W, D); see :func:`pool2d`."""
    return pool2d(x, pool_size, stride, padding, "max")


def avg_pool2d(x, pool_size, stride=None, padding="valid"):
    """Average pooling of x (N, H, W, D) over each window's real elements; see :func:`pool2d`."""
    return pool2d(x, pool_size, stride, padding, "avg")


def sum_pool2d(x, pool_size, stride=None, padding="valid"):
    """Sum pooling of x (N, H, W, D); see :func:`pool2d`."""
    return pool2d(x, pool_size, stride, padding, "sum")


def max_pool1d(x, pool_size, stride=None, padding="valid"):
    """Max pooling along L of x (N, L, D) -> (N, Lo, D): 2D pooling of a height-1 image."""
    return pool2d(x[:, None], (1, pool_size), stride and (1, stride), padding, "max")[:, 0]


def avg_pool1d(x, pool_size, stride=None, padding="valid"):
    """Average pooling along L of x (N, L, D) -> (N, Lo, D)."""
    return pool2d(x[:, None], (1, pool_size), stride and (1, stride), padding, "avg")[:, 0]


def pool1d_backward(x, dy, pool_size, stride=None, padding="valid", kind="max"):
    """dx (N, L, D) of :func:`max_pool1d` (kind='max') or :func:`avg_pool1d` (kind='avg')."""
    s = stride and (1, stride)  # None stays None: the stride defaults to the pool size
    return pool2d_backward(x[:, None], dy[:, None], (1, pool_size), s, padding, kind)[:, 0]


def global_pool(x, kind="max"):
    """y[n, d] = max (kind='max') or mean ('avg') of channel d over every position of x (N, ..., D).

    x is (N, H, W, D) or (N, L, D); y is (N, D). Global max asks "is the pattern anywhere?".
    """
    y = np.zeros((x.shape[0], x.shape[-1]), dtype=x.dtype)
    for n in range(x.shape[0]):
        for d in range(x.shape[-1]):
            y[n, d] = np.max(x[n, ..., d]) if kind == "max" else np.mean(x[n, ..., d])
    return y


def global_max_pool(x):
    """Global max pooling: x (N, H, W, D) or (N, L, D) -> y (N, D); see :func:`global_pool`."""
    return global_pool(x, "max")


def global_avg_pool(x):
    """Global average pooling: x (N, H, W, D) or (N, L, D) -> y (N, D); see :func:`global_pool`."""
    return global_pool(x, "avg")


def global_pool_backward(x, dy, kind="max"):
    """dx (shape of x) of global max (dy to the first largest element) or avg (dy / positions)."""
    dx = np.zeros(x.shape, dtype=dy.dtype)
    for n in range(x.shape[0]):
        for d in range(x.shape[-1]):
            channel = x[n, ..., d]
            if kind == "max":
                dx[(n, *np.unravel_index(np.argmax(channel), channel.shape), d)] += dy[n, d]
            else:
                dx[n, ..., d] += dy[n, d] / channel.size
    return dx


# ------------------------------------------------------------------------ dense and activations


def dense(x, w, b=None):
    """y[n, k] = b[k] + sum_d x[n, d] * w[d, k] for x (N, D_in), w (D_in, units) -> y (N, units)."""
    y = np.zeros((x.shape[0], w.shape[1]), dtype=x.dtype)
    for n in range(x.shape[0]):
        for k in range(w.shape[1]):
            y[n, k] = np.dot(x[n], w[:, k]) + (0 if b is None else b[k])
    return y


def dense_backward(x, w, dy):
    """Gradients of :func:`dense`: dx[n] = sum_k dy[n, k] w[:, k], dw[:, k] = sum_n x[n] dy[n, k]
    and db[k] = sum_n dy[n, k]. Returns (dx (N, D_in), dw (D_in, units), db (units,)).
    """
    dx, dw = np.zeros(x.shape, dy.dtype), np.zeros(w.shape, dy.dtype)
    db = np.zeros(w.shape[1], dy.dtype)
    for n in range(x.shape[0]):
        for k in range(w.shape[1]):
            dx[n] += dy[n, k] * w[:, k]
            dw[:, k] += dy[n, k] * x[n]
            db[k] += dy[n, k]
    return dx, dw, db


def _elementwise(f, *arrays):
    out = np.zeros(arrays[0].shape, dtype=arrays[-1].dtype)
    for idx in np.ndindex(out.shape):
        out[idx] = f(*(a[idx] for a in arrays))
    return out


def _sigmoid(v):
    # 1 / (1 + e^-v), written so that exp never sees a large positive argument
    return 1 / (1 + math.exp(-v)) if v >= 0 else math.exp(v) / (1 + math.exp(v))


def relu(x):
    """max(x, 0) elementwise."""
    return _elementwise(lambda v: max(v, 0.0), x)


def relu_backward(x, dy):
    """dx = dy where x > 0, else 0."""
    return _elementwise(lambda v, g: g if v > 0 else 0.0, x, dy)


def sigmoid(x):
    """1 / (1 + exp(-x)) elementwise."""
    return _elementwise(_sigmoid, x)


def sigmoid_backward(x, dy):
    """dx = dy * s (1 - s) with s = sigmoid(x)."""
    return _elementwise(lambda v, g: g * _sigmoid(v) * (1 - _sigmoid(v)), x, dy)


def tanh(x):
    """tanh(x) elementwise."""
    return _elementwise(math.tanh, x)


def tanh_backward(x, dy):
    """dx = dy * (1 - tanh(x)^2)."""
    return _elementwise(lambda v, g: g * (1 - math.tanh(v) ** 2), x, dy)


def softmax(x):
    """Row by row, y[n, k] = exp(x[n, k] - m) / sum_j exp(x[n, j] - m), m = max_j x[n, j]."""
    y = np.zeros(x.shape, dtype=x.dtype)
    for n in range(x.shape[0]):
        e = np.exp(x[n] - np.max(x[n]))  # subtracting the max changes nothing but avoids overflow
        y[n] = e / np.sum(e)
    return y


def softmax_backward(x, dy):
    """dx[n] = J[n]^T dy[n] with the Jacobian J[n][i, j] = dy_i/dx_j = y_i (delta_ij - y_j)."""
    y, dx = softmax(x), np.zeros(x.shape, dtype=dy.dtype)
    for n in range(x.shape[0]):
        jacobian = np.diag(y[n]) - np.outer(y[n], y[n])
        dx[n] = jacobian.T @ dy[n]
    return dx


# ------------------------------------------------------------------------------ loss and batchnorm


def softmax_cross_entropy(logits, targets):
    """Mean over the batch of -sum_k t[n, k] log softmax(z[n])_k, and dlogits (N, K).

    targets: int labels (N,) or rows of probabilities (N, K). Per sample the gradient is
    p * sum_k t[n, k] - t[n] with p = softmax(z[n]): p - t for a one-hot row.
    """
    n_samples, k = logits.shape
    loss, dz = 0.0, np.zeros(logits.shape, dtype=logits.dtype)
    for n in range(n_samples):
        t = np.eye(k)[targets[n]] if targets.ndim == 1 else targets[n]
        shifted = logits[n] - np.max(logits[n])
        log_p = shifted - np.log(np.sum(np.exp(shifted)))  # log softmax(z[n]), never log(0)
        loss -= np.sum(t * log_p)
        dz[n] = (np.exp(log_p) * np.sum(t) - t) / n_samples
    return float(loss / n_samples), dz


def batchnorm(x, gamma, beta, eps=1e-3):
    """Training-mode batch norm of x (N, ..., D): each channel standardised by its batch statistics.

    mu = mean(x[..., d]), var = mean((x[..., d] - mu)^2) (biased), and
    y[..., d] = gamma[d] (x[..., d] - mu) / sqrt(var + eps) + beta[d].
    Returns (y like x, mean (D,), var (D,)).
    """
    depth = x.shape[-1]
    y, mean, var = np.zeros_like(x), np.zeros(depth, x.dtype), np.zeros(depth, x.dtype)
    for d in range(depth):
        values = x[..., d]
        mean[d] = np.sum(values) / values.size
        var[d] = np.sum((values - mean[d]) ** 2) / values.size
        y[..., d] = gamma[d] * (values - mean[d]) / np.sqrt(var[d] + eps) + beta[d]
    return y, mean, var


def batchnorm_backward(x, gamma, dy, eps=1e-3):
    """Gradients of :func:`batchnorm`: (dx, dgamma (D,), dbeta (D,)), by the chain rule in stages.

    Per channel, with m values, xhat = (x - mu) / std and dxhat = dy * gamma:
    dvar = sum(dxhat (x - mu)) * -1/2 (var + eps)^(-3/2),  dmu = -sum(dxhat) / std,
    dx = dxhat / std + dvar * 2 (x - mu) / m + dmu / m   (dmu's term through var sums to zero).
    """
    dx = np.zeros(x.shape, dtype=dy.dtype)
    dgamma, dbeta = np.zeros(x.shape[-1], dy.dtype), np.zeros(x.shape[-1], dy.dtype)
    for d in range(x.shape[-1]):
        values, g = x[..., d], dy[..., d]
        m = values.size
        mu = np.sum(values) / m
        std = np.sqrt(np.sum((values - mu) ** 2) / m + eps)
        xhat = (values - mu) / std
        dbeta[d], dgamma[d] = np.sum(g), np.sum(g * xhat)
        dxhat = g * gamma[d]
        dvar = np.sum(dxhat * (values - mu)) * -0.5 * std**-3
        dmu = -np.sum(dxhat) / std
        dx[..., d] = dxhat / std + dvar * 2 * (values - mu) / m + dmu / m
    return dx, dgamma, dbeta
