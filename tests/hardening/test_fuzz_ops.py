"""Fuzz the public functional ops of slidenet.ops: conv, pooling, dense, conv_output_length.

Random shapes and hyper-parameters (zero sizes, wrong ranks, mismatched depths, odd strides and
paddings), dtypes and memory layouts. Each call returns an array of the documented shape that is
finite for moderate inputs, or raises a documented error naming the op.
"""

from __future__ import annotations

import numpy as np
from fuzz_support import (
    FUZZ,
    assert_finite,
    call_clean,
    float_arrays,
    is_nasty,
    odd_arrays,
    small_shapes,
)
from hypothesis import given
from hypothesis import strategies as st

from slidenet import ops
from slidenet.ops import reference

ints = st.integers(-1, 4)
PADDINGS = st.one_of(
    st.sampled_from(["valid", "same", "full", 1.5]),
    st.integers(-1, 3),
    st.tuples(st.integers(0, 2), st.integers(0, 2)),
    st.tuples(
        st.tuples(st.integers(0, 2), st.integers(0, 2)),
        st.tuples(st.integers(0, 2), st.integers(0, 2)),
    ),
)


@st.composite
def arrays_of(draw, shape):
    """Mostly moderate floats; sometimes odd dtypes or NaN / Inf."""
    if draw(st.integers(0, 4)) == 0:
        return draw(odd_arrays(shape))
    return draw(float_arrays(shape, bound=5.0))


@FUZZ
@given(
    small_shapes(3, 5, 0, 5),
    small_shapes(3, 5, 0, 3),
    st.booleans(),
    st.one_of(ints, st.tuples(ints, ints)),
    PADDINGS,
    st.integers(0, 2),
    st.data(),
)
def test_conv2d(x_shape, w_shape, bias, stride, padding, dilation, data):
    x = data.draw(arrays_of(x_shape))
    w = data.draw(arrays_of(w_shape))
    b = data.draw(arrays_of((w_shape[-1],))) if bias else None
    nasty = is_nasty(x) or is_nasty(w) or (b is not None and is_nasty(b))
    with np.errstate(all="ignore") if nasty else _nothing():
        ok, y = call_clean(ops.conv2d, "conv2d", x, w, b, stride, padding, dilation)
    if not ok:
        return
    assert y.ndim == 4 and y.shape[0] == x.shape[0] and y.shape[-1] == w.shape[-1]
    if not (is_nasty(x) or is_nasty(w) or (b is not None and is_nasty(b))):
        assert_finite(y, "conv2d")
        if y.size and x.dtype == np.float64 == w.dtype:
            stride_ = stride if isinstance(stride, tuple) else (stride, stride)
            expected = reference.conv2d(x, w, b, stride_, padding, dilation)
            np.testing.assert_allclose(y, expected, rtol=1e-10, atol=1e-10)


@FUZZ
@given(
    small_shapes(2, 4, 0, 5),
    small_shapes(2, 4, 0, 3),
    ints,
    st.one_of(st.sampled_from(["valid", "same"]), st.integers(-1, 2), st.tuples(ints, ints)),
    st.integers(0, 2),
    st.data(),
)
def test_conv1d(x_shape, w_shape, stride, padding, dilation, data):
    x = data.draw(arrays_of(x_shape))
    w = data.draw(arrays_of(w_shape))
    with np.errstate(all="ignore") if is_nasty(x) or is_nasty(w) else _nothing():
        ok, y = call_clean(ops.conv1d, "conv1d", x, w, None, stride, padding, dilation)
    if ok and not (is_nasty(x) or is_nasty(w)):
        assert y.ndim == 3 and y.shape[0] == x.shape[0] and y.shape[-1] == w.shape[-1]
        assert_finite(y, "conv1d")


POOLS_2D = ["max_pool2d", "avg_pool2d", "sum_pool2d"]
POOLS_1D = ["max_pool1d", "avg_pool1d"]


@FUZZ
@given(
    st.sampled_from(POOLS_2D + POOLS_1D),
    small_shapes(2, 5, 0, 5),
    st.one_of(ints, st.tuples(ints, ints)),
    st.one_of(st.none(), ints, st.tuples(ints, ints)),
    st.sampled_from(["valid", "same", "VALID", "full", 0]),
    st.data(),
)
def test_pools(name, x_shape, pool, stride, padding, data):
    x = data.draw(arrays_of(x_shape))
    fn = getattr(ops, name)
    with np.errstate(all="ignore") if is_nasty(x) else _nothing():
        ok, y = call_clean(fn, name, x, pool, stride, padding)
    if ok:
        assert y.ndim == x.ndim and y.shape[0] == x.shape[0] and y.shape[-1] == x.shape[-1]
        if not is_nasty(x):
            assert_finite(y, name)


@FUZZ
@given(st.sampled_from(["global_max_pool", "global_avg_pool"]), small_shapes(1, 5, 0, 4), st.data())
def test_global_pools(name, x_shape, data):
    x = data.draw(arrays_of(x_shape))
    with np.errstate(all="ignore") if is_nasty(x) else _nothing():
        ok, y = call_clean(getattr(ops, name), [name, "global"], x)
    if ok:
        assert y.shape == (x.shape[0], x.shape[-1])
        if not is_nasty(x):
            assert_finite(y, name)


@FUZZ
@given(small_shapes(1, 3, 0, 4), small_shapes(1, 3, 0, 4), st.booleans(), st.data())
def test_dense(x_shape, w_shape, bias, data):
    x = data.draw(arrays_of(x_shape))
    w = data.draw(arrays_of(w_shape))
    b = data.draw(arrays_of((w_shape[-1],))) if bias else None
    nasty = is_nasty(x) or is_nasty(w) or (b is not None and is_nasty(b))
    with np.errstate(all="ignore") if nasty else _nothing():
        ok, y = call_clean(ops.dense, "dense", x, w, b)
    if ok and not nasty:
        assert y.shape == (x.shape[0], w.shape[1])
        assert_finite(y, "dense")


anything = st.one_of(
    st.integers(-3, 40),
    st.floats(allow_nan=True),
    st.booleans(),
    st.none(),
    st.text(max_size=3),
    st.tuples(st.integers(-1, 3), st.integers(-1, 3)),
)


@FUZZ
@given(anything, anything, anything, anything, anything)
def test_conv_output_length(n, f, stride, padding, dilation):
    ok, out = call_clean(
        ops.conv_output_length,
        ["n ", "f ", "stride", "padding", "dilation", "filter", "conv_output_length"],
        n,
        f,
        stride,
        padding,
        dilation,
    )
    if ok:
        assert isinstance(out, int) and out >= 1


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
