"""Compiled convolution kernels against the NumPy path: col2im (compiled/conv.py), Winograd
tile transforms (compiled/winograd.py).

conv2d's backward pass runs under kernels.using("numpy") (per-tap GEMMs, the reference) and
kernels.using("numba") (dy @ W^T, then one compiled col2im, for input depths up to
COL2IM_MAX_DEPTH); dx must agree to 1e-5 (float32) / 1e-12 (float64) relative, dw and db exactly
(they do not change path).
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slidenet.ops import conv, kernels

pytest.importorskip("numba")

TOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}

# id, x (N, H, W, D), w (Fh, Fw, D, K), stride, padding, dilation
CASES = [
    ("lenet-conv2", (4, 14, 14, 6), (5, 5, 6, 16), 1, "valid", 1),
    ("one-channel-same", (3, 12, 12, 1), (5, 5, 1, 8), 1, "same", 1),
    ("F3-S2-same", (2, 9, 9, 3), (3, 3, 3, 4), 2, "same", 1),
    ("F3x2-S(2,1)", (2, 8, 7, 2), (3, 2, 2, 5), (2, 1), "valid", 1),
    ("F3-dilated", (2, 10, 10, 4), (3, 3, 4, 3), 1, "same", 2),
    ("F3-dilated-S2", (1, 11, 11, 2), (3, 3, 2, 3), 2, ((1, 2), (0, 1)), (2, 1)),
    ("1x1-S2", (2, 6, 6, 5), (1, 1, 5, 4), 2, "valid", 1),
    ("max-depth", (1, 6, 6, conv.COL2IM_MAX_DEPTH), (3, 3, conv.COL2IM_MAX_DEPTH, 2), 1, 1, 1),
]


def _grads(backend, x, w, dy, stride, padding, dilation):
    with kernels.using(backend):
        _, cache = conv.conv2d_forward(
            x, w, np.zeros(w.shape[3], x.dtype), stride=stride, padding=padding, dilation=dilation
        )
        return conv.conv2d_backward(dy, cache)


def _check(x_shape, w_shape, stride, padding, dilation, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    y = conv.conv2d(x, w, stride=stride, padding=padding, dilation=dilation)
    dy = rng.standard_normal(y.shape).astype(dtype)
    ref = _grads("numpy", x, w, dy, stride, padding, dilation)
    got = _grads("numba", x, w, dy, stride, padding, dilation)
    assert got[0].shape == x.shape and got[0].dtype == x.dtype
    scale = np.abs(ref[0]).max()
    np.testing.assert_allclose(got[0], ref[0], rtol=0, atol=TOL[np.dtype(dtype)] * scale)
    np.testing.assert_array_equal(got[1], ref[1])
    np.testing.assert_array_equal(got[2], ref[2])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    ("x_shape", "w_shape", "stride", "padding", "dilation"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_compiled_input_gradient_equals_the_numpy_path(
    x_shape, w_shape, stride, padding, dilation, dtype
):
    _check(x_shape, w_shape, stride, padding, dilation, dtype)


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(1, 3),
    hw=st.tuples(st.integers(3, 10), st.integers(3, 10)),
    d=st.integers(1, 6),
    k=st.integers(1, 5),
    f=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    s=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    dil=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    padding=st.sampled_from(["valid", "same"]),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 1000),
)
def test_compiled_input_gradient_property(n, hw, d, k, f, s, dil, padding, dtype, seed):
    if any(h < (fi - 1) * di + 1 for h, fi, di in zip(hw, f, dil, strict=True)):
        padding = "same"  # the kernel does not fit unpadded
    _check((n, *hw, d), (*f, d, k), s, padding, dil, dtype, seed)


# Winograd: the compiled tile transforms (slidenet/ops/compiled/winograd.py) against NumPy's
# Kronecker GEMMs; the same batched GEMM stage, so the results differ by rounding only.
WINOGRAD_TOL32 = 2e-4  # float32 Winograd against float64, relative to the largest value

WINOGRAD_CASES = [
    ("F5-same-lecture", (2, 14, 14, 4), 5, ((2, 2), (2, 2))),
    ("F5-valid", (2, 9, 11, 3), 5, ((0, 0), (0, 0))),
    ("F3-same", (3, 7, 6, 5), 3, ((1, 1), (1, 1))),
    ("F3-uneven-pads", (1, 8, 9, 2), 3, ((0, 2), (1, 0))),
    ("F5-one-tile", (1, 4, 4, 2), 5, ((2, 2), (2, 2))),
]


def _winograd(backend, x, w, b, dy, pads):
    from slidenet.ops import winograd

    with kernels.using(backend):
        y, tiles = winograd.winograd_conv2d(x, w, pads, return_tiles=True, b=b)
        dx, dw = winograd.winograd_backward(dy, tiles, w, pads)
    return y, dx, dw


def _check_winograd(x_shape, r, pads, dtype, seed=0):
    """Both paths against the float64 truth. In float32 the two paths round differently and
    Winograd F(4x4, 5x5)'s transforms amplify rounding (points up to +-2 and 1/2), so each is held
    to WINOGRAD_TOL32 of the largest value against float64, and the compiled path may not be
    clearly worse than NumPy's; in float64 the two paths agree to 1e-10."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal((r, r, x_shape[3], 3))
    b = rng.standard_normal(3)
    dy = rng.standard_normal(conv.conv2d(x, w, b, padding=pads).shape)
    truth = _winograd("numpy", x, w, b, dy, pads)  # float64
    cast = [a.astype(dtype) for a in (x, w, b, dy)]
    ref = _winograd("numpy", *cast, pads)
    got = _winograd("numba", *cast, pads)
    for t, a, g in zip(truth, ref, got, strict=True):
        assert g.shape == t.shape and g.dtype == np.dtype(dtype)
        scale = np.abs(t).max()
        if dtype == np.float64:
            np.testing.assert_allclose(g, a, rtol=0, atol=1e-10 * scale)
            continue
        err_numpy, err_compiled = np.abs(a - t).max(), np.abs(g - t).max()
        assert err_compiled <= WINOGRAD_TOL32 * scale, (err_compiled / scale, err_numpy / scale)
        assert err_compiled <= 3 * err_numpy + 1e-6 * scale, (err_compiled, err_numpy)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    ("x_shape", "r", "pads"), [c[1:] for c in WINOGRAD_CASES], ids=[c[0] for c in WINOGRAD_CASES]
)
def test_compiled_winograd_transforms_equal_the_numpy_path(x_shape, r, pads, dtype):
    _check_winograd(x_shape, r, pads, dtype)


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 3),
    hw=st.tuples(st.integers(5, 13), st.integers(5, 13)),
    d=st.integers(1, 5),
    r=st.sampled_from([3, 5]),
    pads=st.tuples(st.integers(0, 2), st.integers(0, 2), st.integers(0, 2), st.integers(0, 2)),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 1000),
)
def test_compiled_winograd_property(n, hw, d, r, pads, dtype, seed):
    pt, pb, pl, pr = pads
    _check_winograd((n, *hw, d), r, ((pt, pb), (pl, pr)), dtype, seed)
