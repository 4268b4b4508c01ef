"""Fuzz slidenet.filters: correlate/convolve in 1D and 2D, and the kernel builders.

Random images and kernels (every rank from 0 to 4, zero sizes, odd dtypes, NaN / Inf, strided and
read-only), modes and boundaries (some unknown), and random kernel arguments. Results have the
documented shape and are finite, or a documented error names the function.
"""

from __future__ import annotations

import numpy as np
from fuzz_support import FUZZ, assert_finite, call_clean, float_arrays, odd_arrays, small_shapes
from hypothesis import given
from hypothesis import strategies as st

from slidenet import filters

MODES = st.sampled_from(["valid", "same", "full", "SAME", "wrap", None, 1])
BOUNDARIES = st.sampled_from(["zero", "reflect", "nearest", "wrap", "symm", "edge", "x", None, 0])


@st.composite
def arrays(draw, shape):
    if draw(st.integers(0, 4)) == 0:
        return draw(odd_arrays(shape))
    return draw(float_arrays(shape, bound=10.0))


def _expected_shape(fn_name, x, k, mode):
    n = 1 if fn_name.endswith("1d") else 2
    sizes = []
    for i in range(n):
        if mode == "valid":
            sizes.append(x.shape[i] - k.shape[i] + 1)
        elif mode == "same":
            sizes.append(x.shape[i])
        else:
            sizes.append(x.shape[i] + k.shape[i] - 1)
    return (*sizes, *x.shape[n:])


@FUZZ
@given(
    st.sampled_from(["correlate2d", "convolve2d", "correlate1d", "convolve1d"]),
    small_shapes(0, 4, 0, 5),
    small_shapes(0, 3, 0, 4),
    MODES,
    BOUNDARIES,
    st.data(),
)
def test_correlate_and_convolve(name, x_shape, k_shape, mode, boundary, data):
    x = data.draw(arrays(x_shape))
    k = data.draw(arrays(k_shape))
    ok, y = call_clean(getattr(filters, name), [name], x, k, mode=mode, boundary=boundary)
    if ok:
        assert y.shape == _expected_shape(name, x, k, mode)
        assert y.dtype == (x.dtype if x.dtype.kind == "f" else np.float32)
        assert_finite(y, name)


anything = st.one_of(
    st.integers(-3, 9),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.text(max_size=2),
    st.just(np.int64(3)),
    st.just(np.float32(1.5)),
)


@FUZZ
@given(st.sampled_from(["box", "gaussian", "identity", "sharpen", "shift"]), st.data())
def test_kernel_builders(name, data):
    fn = getattr(filters, name)
    args = {
        "box": lambda: (data.draw(anything),),
        "identity": lambda: (data.draw(anything),),
        "sharpen": lambda: (data.draw(anything),),
        "gaussian": lambda: (data.draw(anything), data.draw(anything)),
        "shift": lambda: (data.draw(anything), data.draw(anything), data.draw(anything)),
    }[name]()
    ok, k = call_clean(fn, [name], *args)
    if ok:
        assert k.ndim == 2 and k.shape[0] == k.shape[1] >= 1 and k.dtype == np.float64
        assert_finite(k, name)
        if name in ("box", "gaussian", "identity", "sharpen", "shift"):
            assert abs(k.sum() - 1.0) < 1e-9
