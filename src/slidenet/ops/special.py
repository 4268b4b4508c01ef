"""The error function in NumPy, for the exact GELU (NumPy has no erf and the core needs no scipy).

    erf(x) = 2 / sqrt(pi) * integral from 0 to x of exp(-t^2) dt,     erfc(x) = 1 - erf(x)

Two pieces, both vectorised:

- |x| < 1: the Taylor series erf(x) = 2 / sqrt(pi) * sum_n (-1)^n x^(2n+1) / (n! (2n+1)), 19 terms
  (the first one left out is below 5e-18 at |x| = 1; the terms decrease, so no cancellation).
- |x| >= 1: erfc(x) = exp(-x^2) * u * g(u) with u = 1/x, where g(u) = exp(x^2) erfc(x) / u is
  smooth on [0, 1] (it tends to 1/sqrt(pi) as x -> infinity). g is a Chebyshev series in
  t = 2u - 1 whose coefficients below are the degree-33 interpolant of g computed with mpmath
  at 40 digits (tests/ops/test_activations_more.py recomputes them); the terms left out are below
  1e-17 * g. exp(-x^2) is taken as exp(-xh^2) * exp(-(x - xh)(x + xh)) with xh = x rounded to
  16 fractional bits, so xh^2 is exact and erfc keeps its relative accuracy for large x.

Both are computed in float64 and returned in the input's float dtype: against mpmath, erf is
within 3e-16 and erfc within 9e-16 relative error on [-27, 27].
"""

from __future__ import annotations

import math

import numpy as np

_TAYLOR = tuple(
    2 / math.sqrt(math.pi) * (-1) ** n / (math.factorial(n) * (2 * n + 1)) for n in range(19)
)
_CHEB = (
    0.5039781175024709, -0.07211219804839038, -0.0074953160268578034, 0.0038380518956879846,
    -0.0006410126699713453, -1.5540548808156943e-05, 4.32302431017444e-05,
    -1.3769374457891233e-05, 1.8747983544787693e-06, 3.6072578618964214e-07,
    -3.034436904359487e-07, 9.587247009460417e-08, -1.3583267556330024e-08,
    -3.2191571228104436e-09, 2.8746760803452877e-09, -1.0331200435795728e-09,
    1.924641117055346e-10, 1.9607066076543724e-11, -3.2195507081902384e-11,
    1.4424036270511823e-11, -3.732071412129788e-12, 2.1940352869597366e-13,
    3.5312091100199347e-13, -2.2432582015216673e-13, 7.965962817330427e-14,
    -1.5296191058244737e-14, -2.050885958379538e-15, 3.321826566135263e-15,
    -1.6732296762592147e-15, 5.23700675924776e-16, -7.301626716653906e-17, -3.260028894289172e-17,
    3.094360771844692e-17, -1.4283526727613248e-17,
)  # fmt: skip
_BIG = 30.0  # erfc(30) = 2e-393 is 0 in float64: larger |x| are clipped to it


def _erf_small(x):
    """erf(x) for |x| < 1 (Taylor series in x^2, Horner's rule)."""
    t = x * x
    s = np.zeros_like(x)
    for c in reversed(_TAYLOR):
        s = s * t + c
    return x * s


def _erfc_large(a):
    """erfc(a) for a >= 1 (Chebyshev series in 1/a, Clenshaw's recurrence)."""
    a = np.minimum(a, _BIG)
    u = 1.0 / a
    t2 = 2.0 * (2.0 * u - 1.0)
    b1 = b2 = np.zeros_like(a)
    for c in _CHEB[:0:-1]:
        b1, b2 = c + t2 * b1 - b2, b1
    g = _CHEB[0] + 0.5 * t2 * b1 - b2
    ah = np.round(a * 65536.0) / 65536.0  # 21 significant bits at most: ah * ah is exact
    return np.exp(-ah * ah) * np.exp(-(a - ah) * (a + ah)) * u * g


def _split(x):
    x = np.asarray(x)
    dtype = x.dtype if x.dtype.kind == "f" else np.dtype(np.float64)
    x64 = x.astype(np.float64)
    a = np.abs(x64)
    return x64, a, a < 1, dtype


def erf(x):
    """The error function, elementwise (float64 accuracy; keeps a float input's dtype).

    >>> float(erf(np.array(0.5)))  # math.erf(0.5) = 0.5204998778130465
    0.5204998778130465
    """
    x64, a, small, dtype = _split(x)
    out = np.empty_like(x64)
    out[small] = _erf_small(x64[small])
    big = ~small
    out[big] = np.copysign(1.0 - _erfc_large(a[big]), x64[big])
    return out.astype(dtype, copy=False)


def erfc(x):
    """The complementary error function 1 - erf(x), accurate in relative terms for large x."""
    x64, a, small, dtype = _split(x)
    out = np.empty_like(x64)
    out[small] = 1.0 - _erf_small(x64[small])
    big = ~small
    tail = _erfc_large(a[big])
    out[big] = np.where(x64[big] > 0, tail, 2.0 - tail)
    return out.astype(dtype, copy=False)
