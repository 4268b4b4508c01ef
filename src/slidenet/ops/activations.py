"""Elementwise activations and softmax, each with its hand-derived backward.

The cache of each is what its derivative needs: ReLU keeps where x > 0; sigmoid, tanh and softmax
keep their output y, because their derivatives are written in y:

    relu'(x) = [x > 0]      sigmoid' = y (1 - y)      tanh' = 1 - y^2
    softmax: dx = y * (dy - sum(dy * y, axis))

and the Keras 3 activations added to them (s = sigmoid(x), Phi / phi the standard normal
cumulative distribution / density):

    leaky_relu(x) = x if x > 0 else a x            ' = 1 or a (negative_slope a = 0.2)
    elu(x)  = x if x > 0 else a (e^x - 1)          ' = 1 or y + a (alpha a = 1)
    selu(x) = scale * elu(x, alpha)                ' = scale or y + scale * alpha
    softplus(x) = log(1 + e^x)                     ' = s
    silu(x) = swish(x) = x s                       ' = s (1 + x (1 - s))
    gelu(x) = x Phi(x) = x (1 + erf(x / sqrt 2)) / 2   ' = Phi(x) + x phi(x)
    hard_sigmoid(x) = relu6(x + 3) / 6             ' = 1/6 on -3 < x < 3, else 0
    prelu(x, alpha) = x if x > 0 else alpha x      (alpha a trained array; see prelu_backward)

At a kink (x = 0 for ReLU-like functions, x = +-3 for hard_sigmoid) the derivative taken is the
one of the side the comparison puts x on: torch's choice as well.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from slidenet.ops import kernels
from slidenet.ops.special import erfc

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
_GELU_TANH_C = math.sqrt(2 / math.pi)  # gelu(x, approximate=True) uses tanh(c (x + 0.044715 x^3))


# below this many elements NumPy's own loops beat a compiled call (its dispatch and thread start)
_COMPILED_MIN_SIZE = 1 << 16
_COMPILED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _compiled_relu_applies(a):
    return (
        kernels.compiled()
        and isinstance(a, np.ndarray)
        and a.dtype in _COMPILED_DTYPES
        and a.size >= _COMPILED_MIN_SIZE
        and a.flags.c_contiguous
    )


def relu_forward(x):
    """max(x, 0) elementwise; returns (y, cache) with the cache the mask x > 0."""
    if _compiled_relu_applies(x):
        from slidenet.ops.compiled import activations as compiled

        y, mask = np.empty_like(x), np.empty(x.shape, bool)
        compiled.relu_forward(x.reshape(-1), y.reshape(-1), mask.reshape(-1))
        return y, mask
    mask = x > 0
    return np.maximum(x, 0, dtype=x.dtype), mask  # not x * mask: relu(-inf) is 0, not NaN


def relu_backward(dy, cache):
    """dx = dy where x > 0, else 0."""
    if (
        _compiled_relu_applies(dy)
        and isinstance(cache, np.ndarray)
        and cache.dtype == np.bool_
        and cache.shape == dy.shape
        and cache.flags.c_contiguous
    ):
        from slidenet.ops.compiled import activations as compiled

        dx = np.empty_like(dy)
        compiled.relu_backward(dy.reshape(-1), cache.reshape(-1), dx.reshape(-1))
        return dx
    return dy * cache


def sigmoid_forward(x):
    """1 / (1 + exp(-x)), computed without overflow for large |x|; returns (y, y)."""
    e = np.exp(-np.abs(x))
    y = np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)
    return y, y


def sigmoid_backward(dy, y):
    """dx = dy * y * (1 - y)."""
    return dy * y * (1 - y)


def tanh_forward(x):
    """tanh(x); returns (y, y)."""
    y = np.tanh(x)
    return y, y


def tanh_backward(dy, y):
    """dx = dy * (1 - y^2)."""
    return dy * (1 - y * y)


def softmax_forward(x, axis=-1):
    """exp(x) / sum(exp(x)) along ``axis`` (an int or a tuple of ints), shifted by the max so exp
    never overflows; returns (y, y).

    >>> softmax_forward(np.array([[0.0, np.log(3.0)]]))[0]
    array([[0.25, 0.75]])
    """
    z = np.exp(x - x.max(axis=axis, keepdims=True))
    y = z / z.sum(axis=axis, keepdims=True)
    return y, y


def softmax_backward(dy, y, axis=-1):
    """Jacobian-vector product of softmax along ``axis`` (the forward's):
    dx = y * (dy - sum(dy * y, axis))."""
    return y * (dy - (dy * y).sum(axis=axis, keepdims=True))


def linear_forward(x):
    """The identity (no activation); returns (x, None)."""
    return x, None


def linear_backward(dy, cache):
    """dx = dy."""
    return dy


# ------------------------------------------------------------------------ Keras 3's additions


class SlopeCache(NamedTuple):
    """Where x > 0, and the slope of the negative side (leaky_relu)."""

    positive: np.ndarray
    slope: float


def leaky_relu_forward(x, negative_slope=0.2):
    """x where x > 0, else negative_slope * x (Keras' activation default 0.2; the LeakyReLU layer's
    is 0.3); returns (y, SlopeCache)."""
    positive = x > 0
    slope = x.dtype.type(negative_slope)
    return np.where(positive, x, slope * x), SlopeCache(positive, slope)


def leaky_relu_backward(dy, cache: SlopeCache):
    """dx = dy where x > 0, else negative_slope * dy."""
    return np.where(cache.positive, dy, cache.slope * dy)


class ExpCache(NamedTuple):
    """Where x > 0, the output y and the constant c with f'(x) = y + c on the negative side."""

    positive: np.ndarray
    y: np.ndarray
    c: float


def elu_forward(x, alpha=1.0):
    """x where x > 0, else alpha * (exp(x) - 1); returns (y, ExpCache)."""
    positive = x > 0
    alpha = x.dtype.type(alpha)
    neg = np.expm1(np.minimum(x, 0))  # not expm1(x): no overflow for large positive x
    y = np.where(positive, x, alpha * neg)
    return y, ExpCache(positive, y, alpha)


def elu_backward(dy, cache: ExpCache):
    """dx = dy where x > 0, else dy * (y + alpha) (= dy * alpha * exp(x))."""
    return np.where(cache.positive, dy, dy * (cache.y + cache.c))


def selu_forward(x):
    """SELU_SCALE * elu(x, SELU_ALPHA) (Klambauer et al., 2017); returns (y, ExpCache)."""
    scale = x.dtype.type(SELU_SCALE)
    y, cache = elu_forward(x, SELU_ALPHA)
    y = scale * y
    return y, ExpCache(cache.positive, y, scale * cache.c)


def selu_backward(dy, cache: ExpCache):
    """dx = SELU_SCALE * dy where x > 0, else dy * (y + SELU_SCALE * SELU_ALPHA)."""
    return np.where(cache.positive, cache.y.dtype.type(SELU_SCALE) * dy, dy * (cache.y + cache.c))


def softplus_forward(x):
    """log(1 + exp(x)) = logaddexp(0, x), without overflow; returns (y, x)."""
    return np.logaddexp(x.dtype.type(0), x), x


def softplus_backward(dy, x):
    """dx = dy * sigmoid(x)."""
    return dy * sigmoid_forward(x)[0]


def silu_forward(x):
    """x * sigmoid(x) (Keras' silu, also named swish); returns (y, (x, sigmoid(x)))."""
    s = sigmoid_forward(x)[0]
    return x * s, (x, s)


def silu_backward(dy, cache):
    """dx = dy * s * (1 + x * (1 - s)) with s = sigmoid(x)."""
    x, s = cache
    return dy * (s * (1 + x * (1 - s)))


class GeluCache(NamedTuple):
    """x, and Phi(x) (exact form) or tanh(c (x + 0.044715 x^3)) (approximate=True)."""

    x: np.ndarray
    p: np.ndarray
    approximate: bool


def gelu_forward(x, approximate=False):
    """x * Phi(x), Phi the standard normal CDF (Keras' default, exact: approximate=False, the erf
    form); with approximate=True, x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))) / 2.

    Phi(x) = erfc(-x / sqrt 2) / 2 (see slidenet.ops.special), which keeps its relative accuracy
    in the left tail. Returns (y, GeluCache).
    """
    if approximate:
        xc = np.clip(x, -40, 40)  # tanh is +-1 long before: no overflow in x^3 for huge |x|
        t = np.tanh(_GELU_TANH_C * xc * (1 + 0.044715 * xc * xc))
        return 0.5 * x * (1 + t), GeluCache(x, t, True)
    cdf = 0.5 * erfc(-x * math.sqrt(0.5))
    return x * cdf, GeluCache(x, cdf, False)


def gelu_backward(dy, cache: GeluCache):
    """dx = dy * (Phi(x) + x phi(x)), phi(x) = exp(-x^2 / 2) / sqrt(2 pi); the tanh form:
    dy * ((1 + t) / 2 + x (1 - t^2) c (1 + 3 * 0.044715 x^2) / 2)."""
    x = cache.x
    xc = np.clip(x, -40, 40)  # phi(40) and 1 - tanh^2 there are 0: no overflow in x^2
    if cache.approximate:
        t = cache.p
        dt = (1 - t * t) * (_GELU_TANH_C * (1 + 3 * 0.044715 * xc * xc))
        return dy * (0.5 * (1 + t) + 0.5 * xc * dt)
    pdf = np.exp(-0.5 * xc * xc) * (1 / math.sqrt(2 * math.pi))
    return dy * (cache.p + xc * pdf)


def hard_sigmoid_forward(x):
    """relu6(x + 3) / 6 = clip(x / 6 + 1/2, 0, 1) (Keras 3's definition; Keras 2 used 0.2 x +
    0.5); returns (y, the mask -3 < x < 3)."""
    inside = (x > -3) & (x < 3)
    return np.clip(x / 6 + 0.5, 0, 1).astype(x.dtype, copy=False), inside


def hard_sigmoid_backward(dy, inside):
    """dx = dy / 6 where -3 < x < 3, else 0."""
    return dy * inside / 6


class PReLUCache(NamedTuple):
    """x, alpha, and where x > 0."""

    x: np.ndarray
    alpha: np.ndarray
    positive: np.ndarray


def prelu_forward(x, alpha):
    """x where x > 0, else alpha * x, with alpha (trained) broadcast against x (N, ...): Keras'
    PReLU gives alpha one example's shape, with 1 on its shared axes. Returns (y, PReLUCache)."""
    alpha = np.asarray(alpha, dtype=x.dtype)
    positive = x > 0
    return np.where(positive, x, alpha * x), PReLUCache(x, alpha, positive)


def prelu_backward(dy, cache: PReLUCache):
    """(dx, dalpha): dx = dy where x > 0, else alpha * dy; dalpha sums dy * min(x, 0) over the
    batch and over the axes alpha is shared on (where its size is 1), back to alpha's shape."""
    dx = np.where(cache.positive, dy, cache.alpha * dy)
    dalpha = np.where(cache.positive, 0, dy * cache.x).astype(dy.dtype, copy=False)
    return dx, _sum_to_shape(dalpha, cache.alpha.shape)


def _sum_to_shape(g, shape):
    """Sum ``g`` over the axes a broadcast added or stretched, so that it has ``shape``."""
    shape = tuple(shape)
    g = g.sum(axis=tuple(range(g.ndim - len(shape)))) if g.ndim > len(shape) else g
    stretched = tuple(i for i, (n, m) in enumerate(zip(shape, g.shape, strict=True)) if n != m)
    return g.sum(axis=stretched, keepdims=True) if stretched else g


# --------------------------------------------------------------------------- plain functions


def relu(x):
    """max(x, 0) elementwise."""
    return relu_forward(x)[0]


def sigmoid(x):
    """1 / (1 + exp(-x)) elementwise."""
    return sigmoid_forward(x)[0]


def tanh(x):
    """tanh(x) elementwise."""
    return np.tanh(x)


def softmax(x, axis=-1):
    """Softmax along ``axis`` (the last one by default)."""
    return softmax_forward(x, axis)[0]


def leaky_relu(x, negative_slope=0.2):
    """x if x > 0 else negative_slope * x."""
    return leaky_relu_forward(x, negative_slope)[0]


def elu(x, alpha=1.0):
    """x if x > 0 else alpha * (exp(x) - 1)."""
    return elu_forward(x, alpha)[0]


def selu(x):
    """Scaled ELU: SELU_SCALE * elu(x, SELU_ALPHA)."""
    return selu_forward(x)[0]


def softplus(x):
    """log(1 + exp(x))."""
    return softplus_forward(x)[0]


def silu(x):
    """x * sigmoid(x), also named swish."""
    return silu_forward(x)[0]


swish = silu


def gelu(x, approximate=False):
    """x * Phi(x) (exact); the tanh approximation with approximate=True."""
    return gelu_forward(x, approximate)[0]


def hard_sigmoid(x):
    """relu6(x + 3) / 6."""
    return hard_sigmoid_forward(x)[0]


def prelu(x, alpha):
    """x if x > 0 else alpha * x, alpha broadcast against x."""
    return prelu_forward(x, alpha)[0]


FORWARD = {
    "relu": relu_forward,
    "sigmoid": sigmoid_forward,
    "tanh": tanh_forward,
    "softmax": softmax_forward,
    "linear": linear_forward,
    "leaky_relu": leaky_relu_forward,
    "elu": elu_forward,
    "selu": selu_forward,
    "softplus": softplus_forward,
    "silu": silu_forward,
    "swish": silu_forward,
    "gelu": gelu_forward,
    "hard_sigmoid": hard_sigmoid_forward,
}
BACKWARD = {
    "relu": relu_backward,
    "sigmoid": sigmoid_backward,
    "tanh": tanh_backward,
    "softmax": softmax_backward,
    "linear": linear_backward,
    "leaky_relu": leaky_relu_backward,
    "elu": elu_backward,
    "selu": selu_backward,
    "softplus": softplus_backward,
    "silu": silu_backward,
    "swish": silu_backward,
    "gelu": gelu_backward,
    "hard_sigmoid": hard_sigmoid_backward,
}
