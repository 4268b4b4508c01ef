"""conv2d / conv1d: lecture examples, fast vs reference loops, PyTorch oracle, gradient checks."""

import re

import numpy as np
import pytest
import scipy.signal
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from ops_helpers import (
    as_pair,
    assert_close,
    assert_unmodified,
    check_directions,
    check_grads,
    explicit_pads,
    from_nchw,
    from_torch,
    torch_pad,
)

from slidenet import ops
from slidenet.ops import reference
from slidenet.ops.im2col import col2im, im2col
from torch_oracle import leaf, to_nchw

# id, x shape (N, H, W, D), w shape (Fh, Fw, D, K), stride, padding, dilation
CONV2D_CASES = [
    ("F5-S2-same", (2, 9, 9, 3), (5, 5, 3, 4), 2, "same", 1),
    ("F3x2-S(2,1)-pad((1,2),(0,3))", (2, 7, 6, 2), (3, 2, 2, 3), (2, 1), ((1, 2), (0, 3)), 1),
    ("F3-S3-valid-drops", (1, 8, 8, 2), (3, 3, 2, 2), 3, "valid", 1),
    ("F3-S1-dil2", (2, 9, 8, 2), (3, 3, 2, 3), 1, "valid", 2),
    ("F1-S1", (2, 5, 6, 4), (1, 1, 4, 3), 1, "valid", 1),
    ("F3-S2-same-odd", (2, 7, 9, 2), (3, 3, 2, 2), 2, "same", 1),
    ("F2-S2-same-even", (1, 7, 8, 2), (2, 2, 2, 3), 2, "same", 1),
    ("F4-S3-same", (1, 9, 8, 1), (4, 4, 1, 2), 3, "same", 1),
    ("F3-S1-pad1", (2, 6, 6, 3), (3, 3, 3, 2), 1, 1, 1),
    ("F3x1-S1-pad(1,0)", (1, 6, 5, 2), (3, 1, 2, 4), 1, (1, 0), 1),
    ("F1-S2", (1, 7, 7, 2), (1, 1, 2, 3), 2, "valid", 1),
    ("F3-S2-dil(2,1)-same", (1, 9, 9, 2), (3, 3, 2, 2), 2, "same", (2, 1)),
    ("F3-S1-dil2-same", (1, 6, 7, 2), (3, 3, 2, 2), 1, "same", 2),
    ("F5-S1-valid-full", (2, 5, 5, 2), (5, 5, 2, 3), 1, "valid", 1),
]
CONV2D_IDS = [c[0] for c in CONV2D_CASES]

# id, x shape (N, L, D), w shape (F, D, K), stride, padding, dilation
CONV1D_CASES = [
    ("F3-S1-valid", (2, 11, 3), (3, 3, 2), 1, "valid", 1),
    ("F4-S2-same", (2, 11, 3), (4, 3, 2), 2, "same", 1),
    ("F3-S1-dil2-same", (2, 9, 2), (3, 2, 3), 1, "same", 2),
    ("F3-S2-pad(2,1)", (1, 10, 2), (3, 2, 2), 2, (2, 1), 1),
    ("F2-S3-pad1", (2, 9, 3), (2, 3, 4), 3, 1, 1),
    ("F1-S1", (2, 7, 4), (1, 4, 2), 1, "valid", 1),
]
CONV1D_IDS = [c[0] for c in CONV1D_CASES]


def _data(rng, x_shape, w_shape, dtype=np.float64):
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[-1]).astype(dtype)
    return x, w, b


# ------------------------------------------------------------------------- golden (the lectures)


@pytest.mark.parametrize("impl", [ops, reference], ids=["fast", "reference"])
def test_ten_5x5_filters_on_32x32x3_with_pad_2(impl, rng):
    x = rng.standard_normal((1, 32, 32, 3))
    w, b = rng.standard_normal((5, 5, 3, 10)), rng.standard_normal(10)
    y = impl.conv2d(x, w, b, stride=1, padding=2)
    assert y.shape == (1, 32, 32, 10)  # spatial size kept: (32 - 5 + 2*2)/1 + 1 = 32
    assert w.size + b.size == (5 * 5 * 3 + 1) * 10 == 760


@pytest.mark.parametrize("impl", [ops, reference], ids=["fast", "reference"])
def test_cross_correlation_not_flipped(impl):
    """y[i, j] = sum x[i+u, j+v] w[u, v]: with w = [[1, 0], [0, -1]] every output is x - its SE."""
    x = np.arange(1.0, 10.0).reshape(1, 3, 3, 1)
    w = np.array([[1.0, 0.0], [0.0, -1.0]]).reshape(2, 2, 1, 1)
    np.testing.assert_array_equal(impl.conv2d(x, w)[0, :, :, 0], [[-4.0, -4.0], [-4.0, -4.0]])


@pytest.mark.parametrize("impl", [ops, reference], ids=["fast", "reference"])
def test_box_filter_sums_and_bias(impl):
    x = np.arange(16.0).reshape(1, 4, 4, 1)
    y = impl.conv2d(x, np.ones((3, 3, 1, 1)), np.array([0.5]))
    np.testing.assert_array_equal(y[0, :, :, 0], [[45.5, 54.5], [81.5, 90.5]])


@pytest.mark.parametrize("impl", [ops, reference], ids=["fast", "reference"])
def test_1x1_convolution_is_a_per_pixel_matrix_multiply(impl, rng):
    x, w, b = _data(rng, (2, 5, 4, 6), (1, 1, 6, 3))
    y = impl.conv2d(x, w, b)
    np.testing.assert_allclose(y.reshape(-1, 3), x.reshape(-1, 6) @ w[0, 0] + b, rtol=1e-12)


@pytest.mark.parametrize("impl", [ops, reference], ids=["fast", "reference"])
def test_dilation_2_of_a_3x3_kernel_covers_5x5(impl):
    x = np.arange(25.0).reshape(1, 5, 5, 1)
    w = np.ones((3, 3, 1, 1))
    y = impl.conv2d(x, w, dilation=2)
    assert y.shape == (1, 1, 1, 1)
    assert y[0, 0, 0, 0] == x[0, ::2, ::2, 0].sum()  # taps at rows and cols 0, 2, 4
    footprint = np.zeros((5, 5))
    footprint[::2, ::2] = 1
    if impl is ops:
        dx = ops.conv2d_backward(np.ones((1, 1, 1, 1)), ops.conv2d_forward(x, w, dilation=2)[1])[0]
    else:
        dx = reference.conv2d_backward(x, w, np.ones((1, 1, 1, 1)), dilation=2)[0]
    np.testing.assert_array_equal(dx[0, :, :, 0], footprint)


def test_correlate2d_single_is_scipy_correlate2d_and_a_one_channel_conv2d(rng):
    image, kernel = rng.standard_normal((7, 6)), rng.standard_normal((3, 2))
    out = reference.correlate2d_single(image, kernel)
    assert_close(out, scipy.signal.correlate2d(image, kernel, mode="valid"), op="correlate2d",
                 check="scipy-f64")  # fmt: skip
    fast = ops.conv2d(image[None, :, :, None], kernel[:, :, None, None])[0, :, :, 0]
    assert_close(fast, out, op="correlate2d", check="ref-f64")


def test_conv1d_slides_along_the_signal():
    x = np.array([0.0, 1, 2, 3, 4, 5]).reshape(1, 6, 1)
    w = np.array([1.0, 0, -1]).reshape(3, 1, 1)
    np.testing.assert_array_equal(ops.conv1d(x, w)[0, :, 0], [-2.0, -2, -2, -2])
    np.testing.assert_array_equal(reference.conv1d(x, w)[0, :, 0], [-2.0, -2, -2, -2])
    assert ops.conv1d(x, w, padding="same").shape == (1, 6, 1)


# ------------------------------------------------------------------- fast path vs reference loops


def _fast_conv2d(x, w, b, dy, stride, padding, dilation):
    y, cache = ops.conv2d_forward(x, w, b, stride=stride, padding=padding, dilation=dilation)
    return (y, *ops.conv2d_backward(dy, cache))


@pytest.mark.parametrize(("case", "x_shape", "w_shape", "stride", "padding", "dilation"),
                         CONV2D_CASES, ids=CONV2D_IDS)  # fmt: skip
def test_conv2d_matches_reference(case, x_shape, w_shape, stride, padding, dilation, rng):
    x, w, b = _data(rng, x_shape, w_shape)
    y_ref = reference.conv2d(x, w, b, stride, padding, dilation)
    dy = rng.standard_normal(y_ref.shape)
    fast = _fast_conv2d(x, w, b, dy, stride, padding, dilation)
    ref = (y_ref, *reference.conv2d_backward(x, w, dy, stride, padding, dilation))
    for name, got, want in zip(["y", "dx", "dw", "db"], fast, ref, strict=True):
        assert_close(got, want, op="conv2d", check="ref-f64")
        assert got.dtype == np.float64, name


def test_conv2d_without_bias(rng):
    x, w, _ = _data(rng, (1, 5, 5, 2), (3, 3, 2, 2))
    y, cache = ops.conv2d_forward(x, w, padding="same")
    dx, dw, db = ops.conv2d_backward(np.ones_like(y), cache)
    assert db is None
    assert_close(y, reference.conv2d(x, w, None, 1, "same"), op="conv2d", check="ref-f64")
    rdx, rdw, _ = reference.conv2d_backward(x, w, np.ones_like(y), 1, "same")
    assert_close(dx, rdx, op="conv2d", check="ref-f64")
    assert_close(dw, rdw, op="conv2d", check="ref-f64")


@settings(max_examples=30, deadline=None)
@given(
    h=st.integers(3, 7), w=st.integers(3, 7), f=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    s=st.tuples(st.integers(1, 3), st.integers(1, 3)), dil=st.integers(1, 2),
    padding=st.sampled_from(["valid", "same", 1, ((0, 2), (1, 0))]), seed=st.integers(0, 2**16),
)  # fmt: skip
def test_conv2d_matches_reference_random_geometry(h, w, f, s, dil, padding, seed):
    rng = np.random.default_rng(seed)
    x, k, b = _data(rng, (1, h, w, 2), (*f, 2, 2))
    pads = explicit_pads(padding, (h, w), f, s, (dil, dil))
    out = [
        (n + p0 + p1 - (fi - 1) * dil - 1) // si + 1
        for n, (p0, p1), fi, si in zip((h, w), pads, f, s, strict=True)
    ]
    if min(out) < 1:
        with pytest.raises(ValueError, match="does not fit"):
            ops.conv2d(x, k, b, s, padding, dil)
        return
    y_ref = reference.conv2d(x, k, b, s, padding, dil)
    assert y_ref.shape == (1, *out, 2)
    dy = rng.standard_normal(y_ref.shape)
    fast = _fast_conv2d(x, k, b, dy, s, padding, dil)
    ref = (y_ref, *reference.conv2d_backward(x, k, dy, s, padding, dil))
    for got, want in zip(fast, ref, strict=True):
        assert_close(got, want, op="conv2d", check="ref-f64")


@pytest.mark.parametrize(("case", "x_shape", "w_shape", "stride", "padding", "dilation"),
                         CONV1D_CASES, ids=CONV1D_IDS)  # fmt: skip
def test_conv1d_matches_reference(case, x_shape, w_shape, stride, padding, dilation, rng):
    x, w, b = _data(rng, x_shape, w_shape)
    y, cache = ops.conv1d_forward(x, w, b, stride=stride, padding=padding, dilation=dilation)
    y_ref = reference.conv1d(x, w, b, stride, padding, dilation)
    dy = rng.standard_normal(y_ref.shape)
    fast = (y, *ops.conv1d_backward(dy, cache))
    ref = (y_ref, *reference.conv1d_backward(x, w, dy, stride, padding, dilation))
    for got, want in zip(fast, ref, strict=True):
        assert_close(got, want, op="conv1d", check="ref-f64")


@pytest.mark.parametrize(
    ("kernel", "strides", "dilations", "xp_shape"),
    [((3, 3), (1, 1), (1, 1), (2, 6, 5, 3)), ((3, 2), (2, 1), (1, 2), (1, 7, 8, 2)),
     ((1, 1), (1, 1), (1, 1), (2, 4, 3, 3)), ((2, 3), (3, 2), (2, 1), (1, 9, 9, 2))],
    ids=["F3-S1", "F3x2-S(2,1)-dil(1,2)", "F1-S1-view", "F2x3-S(3,2)-dil(2,1)"],
)  # fmt: skip
def test_im2col_rows_are_windows_and_col2im_is_its_adjoint(
    kernel, strides, dilations, xp_shape, rng
):
    (fh, fw), (sh, sw), (rh, rw) = kernel, strides, dilations
    ho = (xp_shape[1] - (fh - 1) * rh - 1) // sh + 1
    wo = (xp_shape[2] - (fw - 1) * rw - 1) // sw + 1
    xp = rng.standard_normal(xp_shape)
    cols = im2col(xp, kernel, strides, dilations, (ho, wo))
    assert cols.shape == (xp_shape[0] * ho * wo, fh * fw * xp_shape[3])
    row = 0
    for n in range(xp_shape[0]):
        for i in range(ho):
            for j in range(wo):  # patch order (Fh, Fw, D), as a Keras kernel reshaped
                window = xp[n, i * sh : i * sh + (fh - 1) * rh + 1 : rh,
                            j * sw : j * sw + (fw - 1) * rw + 1 : rw]  # fmt: skip
                np.testing.assert_array_equal(cols[row], window.ravel())
                row += 1
    c = rng.standard_normal(cols.shape)
    back = col2im(c, xp_shape, kernel, strides, dilations, (ho, wo))
    assert back.shape == xp_shape
    assert np.sum(cols * c) == pytest.approx(np.sum(xp * back), rel=1e-12)


def test_conv_backward_can_skip_dx(rng):
    x, w, b = _data(rng, (2, 6, 6, 2), (3, 3, 2, 3))
    y, cache = ops.conv2d_forward(x, w, b, stride=2, padding="same")
    dy = rng.standard_normal(y.shape)
    dx, dw, db = ops.conv2d_backward(dy, cache)
    no_dx = ops.conv2d_backward(dy, cache, need_dx=False)
    assert no_dx[0] is None
    np.testing.assert_array_equal(no_dx[1], dw)
    np.testing.assert_array_equal(no_dx[2], db)
    y1, cache1 = ops.conv1d_forward(x[:, 0], w[0], b)
    assert ops.conv1d_backward(np.ones_like(y1), cache1, need_dx=False)[0] is None


# ------------------------------------------------------------------------------- PyTorch oracle


def _torch_conv2d(x, w, b, dy, stride, padding, dilation):
    """Forward and (dx, dw, db) by torch in float64; 'same' and asymmetric pads applied with F.pad
    first."""
    strides, dilations = as_pair(stride), as_pair(dilation)
    pads = explicit_pads(padding, x.shape[1:3], w.shape[:2], strides, dilations)
    xt, wt, bt = to_nchw(x), leaf(w.transpose(3, 2, 0, 1)), leaf(b)
    yt = F.conv2d(torch_pad(xt, pads), wt, bt, stride=strides, dilation=dilations)
    (yt * to_nchw(dy, grad=False)).sum().backward()
    dw = from_torch(wt.grad).transpose(2, 3, 1, 0)
    return from_nchw(yt), from_nchw(xt.grad), dw, from_torch(bt.grad)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("case", "x_shape", "w_shape", "stride", "padding", "dilation"),
                         CONV2D_CASES, ids=CONV2D_IDS)  # fmt: skip
def test_conv2d_matches_torch(case, x_shape, w_shape, stride, padding, dilation, dtype, rng):
    x, w, b = _data(rng, x_shape, w_shape, dtype)
    y, cache = ops.conv2d_forward(x, w, b, stride=stride, padding=padding, dilation=dilation)
    dy = rng.standard_normal(y.shape).astype(dtype)
    fast = (y, *ops.conv2d_backward(dy, cache))
    oracle = _torch_conv2d(x, w, b, dy, stride, padding, dilation)
    for name, got, want in zip(["y", "dx", "dw", "db"], fast, oracle, strict=True):
        assert got.dtype == dtype, name
        assert_close(got, want, op=f"conv2d {name}", check=f"torch-{np.dtype(dtype).name}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("case", "x_shape", "w_shape", "stride", "padding", "dilation"),
                         CONV1D_CASES, ids=CONV1D_IDS)  # fmt: skip
def test_conv1d_matches_torch(case, x_shape, w_shape, stride, padding, dilation, dtype, rng):
    x, w, b = _data(rng, x_shape, w_shape, dtype)
    y, cache = ops.conv1d_forward(x, w, b, stride=stride, padding=padding, dilation=dilation)
    dy = rng.standard_normal(y.shape).astype(dtype)
    fast = (y, *ops.conv1d_backward(dy, cache))
    (pads,) = explicit_pads(
        padding if isinstance(padding, str) else (padding,), x.shape[1:2], w.shape[:1],
        (stride,), (dilation,),
    )  # fmt: skip
    xt, wt, bt = to_nchw(x), leaf(w.transpose(2, 1, 0)), leaf(b)
    yt = F.conv1d(torch_pad(xt, (pads,)), wt, bt, stride=stride, dilation=dilation)
    (yt * to_nchw(dy, grad=False)).sum().backward()
    dw = from_torch(wt.grad).transpose(2, 1, 0)
    oracle = (from_nchw(yt), from_nchw(xt.grad), dw, from_torch(bt.grad))
    for name, got, want in zip(["y", "dx", "dw", "db"], fast, oracle, strict=True):
        assert got.dtype == dtype, name
        assert_close(got, want, op=f"conv1d {name}", check=f"torch-{np.dtype(dtype).name}")


def test_conv2d_same_stride_2_pads_bottom_right_like_tensorflow(rng):
    """Guard the oracle itself: torch's own symmetric padding differs from TF 'same' here."""
    x, w, b = _data(rng, (1, 6, 6, 1), (2, 2, 1, 1))
    y = ops.conv2d(x, w, b, stride=2, padding="same")  # TF: pads (0, 0) -> ceil(6 / 2) = 3
    assert y.shape == (1, 3, 3, 1)
    wt, bt = leaf(w.transpose(3, 2, 0, 1), grad=False), leaf(b, grad=False)
    sym = F.conv2d(to_nchw(x, grad=False), wt, bt, stride=2, padding=1)
    assert not np.allclose(from_nchw(sym)[:, :3, :3], y)


# ------------------------------------------------------------------------ numerical gradients


def _conv2d_objective(stride, padding, dilation, g):
    def f(x, w, b):
        return float(np.sum(ops.conv2d(x, w, b, stride, padding, dilation) * g))

    return f


@pytest.mark.parametrize(
    ("stride", "padding", "dilation"),
    [(1, "valid", 1), (2, "same", 1), (1, ((1, 0), (0, 2)), 1), (1, "same", 2), ((2, 1), 1, 1)],
    ids=["S1-valid", "S2-same", "S1-pad((1,0),(0,2))", "S1-same-dil2", "S(2,1)-pad1"],
)
def test_conv2d_gradcheck_all_entries(stride, padding, dilation, rng):
    x, w, b = _data(rng, (1, 5, 4, 2), (3, 2, 2, 2))
    y, cache = ops.conv2d_forward(x, w, b, stride=stride, padding=padding, dilation=dilation)
    g = rng.standard_normal(y.shape)
    dx, dw, db = ops.conv2d_backward(g, cache)
    f = _conv2d_objective(stride, padding, dilation, g)
    check_grads(f, {"x": x, "w": w, "b": b}, {"x": dx, "w": dw, "b": db}, op="conv2d")


@pytest.mark.parametrize(("case", "x_shape", "w_shape", "stride", "padding", "dilation"),
                         CONV2D_CASES, ids=CONV2D_IDS)  # fmt: skip
def test_conv2d_gradcheck_directions(case, x_shape, w_shape, stride, padding, dilation, rng):
    x, w, b = _data(rng, x_shape, w_shape)
    y, cache = ops.conv2d_forward(x, w, b, stride=stride, padding=padding, dilation=dilation)
    g = rng.standard_normal(y.shape)
    dx, dw, db = ops.conv2d_backward(g, cache)
    f = _conv2d_objective(stride, padding, dilation, g)
    check_directions(f, {"x": x, "w": w, "b": b}, {"x": dx, "w": dw, "b": db}, rng, op="conv2d")


@pytest.mark.parametrize(("case", "x_shape", "w_shape", "stride", "padding", "dilation"),
                         CONV1D_CASES, ids=CONV1D_IDS)  # fmt: skip
def test_conv1d_gradcheck_all_entries(case, x_shape, w_shape, stride, padding, dilation, rng):
    x, w, b = _data(rng, x_shape, w_shape)
    y, cache = ops.conv1d_forward(x, w, b, stride=stride, padding=padding, dilation=dilation)
    g = rng.standard_normal(y.shape)
    dx, dw, db = ops.conv1d_backward(g, cache)

    def f(x, w, b):
        return float(np.sum(ops.conv1d(x, w, b, stride, padding, dilation) * g))

    check_grads(f, {"x": x, "w": w, "b": b}, {"x": dx, "w": dw, "b": db}, op="conv1d")


# ---------------------------------------------------------------------------- dtype and purity


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", ["conv2d", "conv1d"])
def test_dtype_preserved_and_inputs_untouched(op, dtype, rng):
    forward, backward = getattr(ops, f"{op}_forward"), getattr(ops, f"{op}_backward")
    shapes = ((2, 6, 5, 3), (3, 2, 3, 4)) if op == "conv2d" else ((2, 7, 3), (3, 3, 4))
    x, w, b = _data(rng, *shapes, dtype)
    y, cache = assert_unmodified(
        lambda x, w, b: forward(x, w, b, stride=2, padding="same"), x, w, b
    )
    assert not np.shares_memory(y, x)
    dy = rng.standard_normal(y.shape).astype(dtype)
    grads = assert_unmodified(lambda dy: backward(dy, cache), dy)
    for a in (y, *grads):
        assert a.dtype == dtype
    assert [g.shape for g in grads] == [x.shape, w.shape, b.shape]
    # a second backward with the same cache gives the same answer (the cache is not consumed)
    for first, second in zip(grads, backward(dy, cache), strict=True):
        np.testing.assert_array_equal(first, second)


def test_1x1_stride_1_fast_path_does_not_alias_input(rng):
    x, w, b = _data(rng, (1, 3, 3, 2), (1, 1, 2, 2))
    y, cache = ops.conv2d_forward(x, w, b)
    dx, _, _ = ops.conv2d_backward(np.ones_like(y), cache)
    assert not np.shares_memory(y, x) and not np.shares_memory(dx, x)


# ----------------------------------------------------------------------------------- errors


def test_kernel_that_does_not_fit_is_refused():
    with pytest.raises(ValueError, match=re.escape("conv2d: kernel 5x5 does not fit input 3x3")):
        ops.conv2d(np.zeros((1, 3, 3, 1)), np.zeros((5, 5, 1, 1)))
    with pytest.raises(ValueError, match=re.escape("(dilated to 5x5)")):
        ops.conv2d(np.zeros((1, 4, 4, 1)), np.zeros((3, 3, 1, 1)), dilation=2)
    with pytest.raises(ValueError, match=r"^conv1d: kernel 1x5 does not fit"):
        ops.conv1d(np.zeros((1, 3, 1)), np.zeros((5, 1, 1)))


@pytest.mark.parametrize(
    ("x_shape", "w_shape", "b_shape", "message"),
    [
        ((1, 5, 5, 3), (3, 3, 2, 4), (4,), "filters span depth 2 but the input has depth 3"),
        ((5, 5, 3), (3, 3, 3, 4), (4,), "x must be (N, H, W, D)"),
        ((1, 5, 5, 3), (3, 3, 3), (4,), "w must be (Fh, Fw, D, K)"),
        ((1, 5, 5, 3), (3, 3, 3, 4), (3,), "b must have shape (4,)"),
    ],
)
def test_bad_shapes_are_refused(x_shape, w_shape, b_shape, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        ops.conv2d(np.zeros(x_shape), np.zeros(w_shape), np.zeros(b_shape))
