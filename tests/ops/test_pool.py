"""Pooling (max / average / sum, 1D and 2D, global): lecture examples, fast vs reference loops,
PyTorch oracle and gradient checks."""

import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from ops_helpers import (
    as_pair,
    assert_close,
    assert_unmodified,
    check_directions,
    check_grads,
    distinct,
    from_nchw,
    tf_same_pads,
    torch_pad,
)

from slidenet import ops
from slidenet.ops import reference
from torch_oracle import leaf, to_nchw

LECTURE = np.array([[1, 1, 2, 4], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]], np.float64)

# id, x shape (N, H, W, D), pool_size, stride, padding
POOL2D_CASES = [
    ("P2-S2-valid", (2, 8, 8, 3), 2, None, "valid"),
    ("P3-S2-overlap", (2, 9, 9, 2), 3, 2, "valid"),
    ("P3-S1-overlap", (1, 6, 7, 2), 3, 1, "valid"),
    ("P2-S2-same-odd", (2, 7, 9, 2), 2, None, "same"),
    ("P3-S2-same", (1, 8, 8, 2), 3, 2, "same"),
    ("P3-S1-same", (1, 6, 6, 2), 3, 1, "same"),
    ("P3x2-S(1,2)-same", (1, 7, 6, 2), (3, 2), (1, 2), "same"),
    ("P2-S3-gaps", (1, 8, 8, 2), 2, 3, "valid"),
    ("P3-S3-valid-drops", (1, 8, 8, 1), 3, None, "valid"),
    ("P4-S3-same", (1, 9, 7, 2), 4, 3, "same"),
]
POOL2D_IDS = [c[0] for c in POOL2D_CASES]

# id, x shape (N, L, D), pool_size, stride, padding
POOL1D_CASES = [
    ("P2-valid", (2, 9, 3), 2, None, "valid"),
    ("P3-S2-same", (2, 9, 2), 3, 2, "same"),
    ("P3-S1-overlap", (1, 8, 2), 3, 1, "valid"),
    ("P2-same-odd", (2, 9, 2), 2, None, "same"),
]
POOL1D_IDS = [c[0] for c in POOL1D_CASES]
KINDS = ["max", "avg", "sum"]


def _pads(x_shape, pool_size, stride, padding):
    pool = as_pair(pool_size)
    strides = pool if stride is None else as_pair(stride)
    if padding == "valid":
        return pool, strides, ((0, 0), (0, 0))
    return pool, strides, tuple(map(tf_same_pads, x_shape[1:3], pool, strides))


# ------------------------------------------------------------------------- golden (the lectures)


@pytest.mark.parametrize("impl", [ops, reference], ids=["fast", "reference"])
def test_lecture_2x2_stride_2_max_pool(impl):
    y = impl.max_pool2d(LECTURE.reshape(1, 4, 4, 1), 2)
    np.testing.assert_array_equal(y[0, :, :, 0], [[6, 8], [3, 4]])


@pytest.mark.parametrize("impl", [ops, reference], ids=["fast", "reference"])
def test_lecture_example_average_and_sum(impl):
    x = LECTURE.reshape(1, 4, 4, 1)
    np.testing.assert_array_equal(impl.avg_pool2d(x, 2)[0, :, :, 0], [[3.25, 5.25], [2, 2]])
    np.testing.assert_array_equal(impl.sum_pool2d(x, 2)[0, :, :, 0], [[13, 21], [8, 8]])


def test_lecture_max_pool_gradient_goes_to_the_winners():
    x = LECTURE.reshape(1, 4, 4, 1)
    winners = np.zeros((4, 4))
    winners[1, 1] = winners[1, 3] = winners[2, 0] = winners[3, 3] = 1  # the 6, 8, 3 and 4
    dy = np.ones((1, 2, 2, 1))
    _, cache = ops.max_pool2d_forward(x, 2)
    np.testing.assert_array_equal(ops.max_pool2d_backward(dy, cache)[0, :, :, 0], winners)
    np.testing.assert_array_equal(reference.pool2d_backward(x, dy, 2)[0, :, :, 0], winners)


@pytest.mark.parametrize("impl", [ops, reference], ids=["fast", "reference"])
def test_same_pools_partial_windows_over_real_elements_only(impl):
    """3x3 input, 2x2 windows, stride 2, 'same': one padded row and column at the bottom/right."""
    x = np.arange(1.0, 10.0).reshape(1, 3, 3, 1)
    np.testing.assert_array_equal(
        impl.max_pool2d(x, 2, padding="same")[0, ..., 0], [[5, 6], [8, 9]]
    )
    avg = impl.avg_pool2d(x, 2, padding="same")[0, ..., 0]
    np.testing.assert_array_equal(avg, [[3, 4.5], [7.5, 9]])
    np.testing.assert_array_equal(
        impl.sum_pool2d(x, 2, padding="same")[0, ..., 0], [[12, 9], [15, 9]]
    )
    # all-negative input: max must ignore the padding rather than return 0
    np.testing.assert_array_equal(
        impl.max_pool2d(-x, 2, padding="same")[0, ..., 0], [[-1, -3], [-7, -9]]
    )


def test_max_pool_ties_send_the_gradient_once():
    x = np.ones((1, 4, 4, 2))
    y, cache = ops.max_pool2d_forward(x, 2)
    dx = ops.max_pool2d_backward(np.ones_like(y), cache)
    assert dx.sum() == y.size  # one winner per window, not four
    np.testing.assert_array_equal(dx, reference.pool2d_backward(x, np.ones_like(y), 2))


@pytest.mark.parametrize("impl", [ops, reference], ids=["fast", "reference"])
def test_global_pooling_asks_is_the_pattern_anywhere(impl):
    x = np.zeros((2, 5, 5, 3))
    x[0, 4, 1, 2] = 7.0
    np.testing.assert_array_equal(impl.global_max_pool(x), [[0, 0, 7], [0, 0, 0]])
    np.testing.assert_allclose(impl.global_avg_pool(x), [[0, 0, 7 / 25], [0, 0, 0]])


# ------------------------------------------------------------------- fast path vs reference loops


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("case", "x_shape", "pool", "stride", "padding"), POOL2D_CASES,
                         ids=POOL2D_IDS)  # fmt: skip
def test_pool2d_matches_reference(case, x_shape, pool, stride, padding, kind, rng):
    x = distinct(rng, x_shape)
    y, cache = ops.pool2d_forward(x, pool, stride, padding, kind)
    dy = rng.standard_normal(y.shape)
    assert_close(y, reference.pool2d(x, pool, stride, padding, kind), op=f"{kind}_pool2d",
                 check="ref-f64")  # fmt: skip
    assert_close(ops.pool2d_backward(dy, cache),
                 reference.pool2d_backward(x, dy, pool, stride, padding, kind),
                 op=f"{kind}_pool2d", check="ref-f64")  # fmt: skip


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize(("case", "x_shape", "pool", "stride", "padding"), POOL1D_CASES,
                         ids=POOL1D_IDS)  # fmt: skip
def test_pool1d_matches_reference(case, x_shape, pool, stride, padding, kind, rng):
    x = distinct(rng, x_shape)
    y, cache = ops.pool1d_forward(x, pool, stride, padding, kind)
    np.testing.assert_array_equal(y, getattr(ops, f"{kind}_pool1d")(x, pool, stride, padding))
    assert_close(y, getattr(reference, f"{kind}_pool1d")(x, pool, stride, padding),
                 op=f"{kind}_pool1d", check="ref-f64")  # fmt: skip
    dy = rng.standard_normal(y.shape)
    assert_close(ops.pool1d_backward(dy, cache),
                 reference.pool1d_backward(x, dy, pool, stride, padding, kind),
                 op=f"{kind}_pool1d", check="ref-f64")  # fmt: skip


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("x_shape", [(2, 5, 4, 3), (2, 7, 3)], ids=["2d", "1d"])
def test_global_pool_matches_reference(kind, x_shape, rng):
    x = distinct(rng, x_shape)
    y, cache = ops.global_pool_forward(x, kind)
    assert_close(y, reference.global_pool(x, kind), op=f"global_{kind}_pool", check="ref-f64")
    dy = rng.standard_normal(y.shape)
    assert_close(ops.global_pool_backward(dy, cache), reference.global_pool_backward(x, dy, kind),
                 op=f"global_{kind}_pool", check="ref-f64")  # fmt: skip


# ------------------------------------------------------------------------------- PyTorch oracle


def _torch_pool(x, pool, strides, pads, kind):
    """torch forward on explicitly padded input; avg over real elements = sum pool / count pool."""
    xt = to_nchw(x)
    if kind == "max":
        return xt, F.max_pool2d(torch_pad(xt, pads, float("-inf")), pool, strides)
    area = pool[0] * pool[1]
    sums = F.avg_pool2d(torch_pad(xt, pads), pool, strides) * area
    if kind == "sum":
        return xt, sums
    ones = torch.ones_like(xt[:1, :1])
    counts = F.avg_pool2d(torch_pad(ones, pads), pool, strides) * area
    return xt, sums / counts


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("case", "x_shape", "pool", "stride", "padding"), POOL2D_CASES,
                         ids=POOL2D_IDS)  # fmt: skip
def test_pool2d_matches_torch(case, x_shape, pool, stride, padding, kind, dtype, rng):
    x = distinct(rng, x_shape, dtype)
    y, cache = ops.pool2d_forward(x, pool, stride, padding, kind)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = ops.pool2d_backward(dy, cache)
    pool2, strides, pads = _pads(x_shape, pool, stride, padding)
    xt, yt = _torch_pool(x, pool2, strides, pads, kind)
    (yt * to_nchw(dy, grad=False)).sum().backward()
    check = f"torch-{np.dtype(dtype).name}"
    assert y.dtype == dx.dtype == dtype
    assert_close(y, from_nchw(yt), op=f"{kind}_pool2d y", check=check)
    assert_close(dx, from_nchw(xt.grad), op=f"{kind}_pool2d dx", check=check)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_avg_pool_same_equals_torch_count_include_pad_false(dtype, rng):
    """Where 'same' pads symmetrically, torch's own padding with count_include_pad=False agrees."""
    x = distinct(rng, (2, 6, 6, 2), dtype)
    y, cache = ops.avg_pool2d_forward(x, 3, 1, "same")  # pads (1, 1) on both axes
    dy = rng.standard_normal(y.shape).astype(dtype)
    xt = to_nchw(x)
    yt = F.avg_pool2d(xt, 3, 1, padding=1, count_include_pad=False)
    (yt * to_nchw(dy, grad=False)).sum().backward()
    check = f"torch-{np.dtype(dtype).name}"
    assert_close(y, from_nchw(yt), op="avg_pool2d y", check=check)
    assert_close(
        ops.avg_pool2d_backward(dy, cache), from_nchw(xt.grad), op="avg_pool2d dx", check=check
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize(("case", "x_shape", "pool", "stride", "padding"), POOL1D_CASES,
                         ids=POOL1D_IDS)  # fmt: skip
def test_pool1d_matches_torch(case, x_shape, pool, stride, padding, kind, dtype, rng):
    x = distinct(rng, x_shape, dtype)
    y, cache = ops.pool1d_forward(x, pool, stride, padding, kind)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = ops.pool1d_backward(dy, cache)
    s = pool if stride is None else stride
    pads = ((0, 0),) if padding == "valid" else (tf_same_pads(x_shape[1], pool, s),)
    xt = to_nchw(x)
    if kind == "max":
        yt = F.max_pool1d(torch_pad(xt, pads, float("-inf")), pool, s)
    else:
        counts = F.avg_pool1d(torch_pad(torch.ones_like(xt[:1, :1]), pads), pool, s)
        yt = F.avg_pool1d(torch_pad(xt, pads), pool, s) / counts
    (yt * to_nchw(dy, grad=False)).sum().backward()
    check = f"torch-{np.dtype(dtype).name}"
    assert y.dtype == dx.dtype == dtype
    assert_close(y, from_nchw(yt), op=f"{kind}_pool1d y", check=check)
    assert_close(dx, from_nchw(xt.grad), op=f"{kind}_pool1d dx", check=check)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("x_shape", [(2, 5, 4, 3), (2, 7, 3)], ids=["2d", "1d"])
def test_global_pool_matches_torch(kind, x_shape, dtype, rng):
    x = distinct(rng, x_shape, dtype)
    y, cache = ops.global_pool_forward(x, kind)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = ops.global_pool_backward(dy, cache)
    xt = leaf(x)
    axes = tuple(range(1, x.ndim - 1))
    yt = xt.amax(dim=axes) if kind == "max" else xt.mean(dim=axes)
    (yt * leaf(dy, grad=False)).sum().backward()
    check = f"torch-{np.dtype(dtype).name}"
    assert y.dtype == dx.dtype == dtype
    assert_close(y, yt, op=f"global_{kind}_pool y", check=check)
    assert_close(dx, xt.grad, op=f"global_{kind}_pool dx", check=check)


# ------------------------------------------------------------------------ numerical gradients


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("case", "x_shape", "pool", "stride", "padding"), POOL2D_CASES,
                         ids=POOL2D_IDS)  # fmt: skip
def test_pool2d_gradcheck(case, x_shape, pool, stride, padding, kind, rng):
    x = distinct(rng, x_shape)
    y, cache = ops.pool2d_forward(x, pool, stride, padding, kind)
    g = rng.standard_normal(y.shape)
    dx = ops.pool2d_backward(g, cache)

    def f(x):
        return float(np.sum(ops.pool2d_forward(x, pool, stride, padding, kind)[0] * g))

    if x.size <= 200:
        check_grads(f, {"x": x}, {"x": dx}, op=f"{kind}_pool2d")
    check_directions(f, {"x": x}, {"x": dx}, rng, op=f"{kind}_pool2d")


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize(("case", "x_shape", "pool", "stride", "padding"), POOL1D_CASES,
                         ids=POOL1D_IDS)  # fmt: skip
def test_pool1d_gradcheck(case, x_shape, pool, stride, padding, kind, rng):
    x = distinct(rng, x_shape)
    y, cache = ops.pool1d_forward(x, pool, stride, padding, kind)
    g = rng.standard_normal(y.shape)

    def f(x):
        return float(np.sum(ops.pool1d_forward(x, pool, stride, padding, kind)[0] * g))

    check_grads(f, {"x": x}, {"x": ops.pool1d_backward(g, cache)}, op=f"{kind}_pool1d")


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("x_shape", [(2, 3, 4, 2), (2, 5, 3)], ids=["2d", "1d"])
def test_global_pool_gradcheck(kind, x_shape, rng):
    x = distinct(rng, x_shape)
    y, cache = ops.global_pool_forward(x, kind)
    g = rng.standard_normal(y.shape)

    def f(x):
        return float(np.sum(ops.global_pool_forward(x, kind)[0] * g))

    check_grads(f, {"x": x}, {"x": ops.global_pool_backward(g, cache)}, op=f"global_{kind}_pool")


# ---------------------------------------------------------------------------- dtype and purity


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    ("name", "forward", "backward", "x_shape"),
    [
        ("max_pool2d", lambda x: ops.max_pool2d_forward(x, 3, 2, "same"), ops.max_pool2d_backward,
         (2, 7, 6, 3)),
        ("avg_pool2d", lambda x: ops.avg_pool2d_forward(x, 3, 2, "same"), ops.avg_pool2d_backward,
         (2, 7, 6, 3)),
        ("sum_pool2d", lambda x: ops.sum_pool2d_forward(x, 2), ops.sum_pool2d_backward,
         (2, 6, 6, 3)),
        ("max_pool1d", lambda x: ops.pool1d_forward(x, 2, None, "same", "max"),
         ops.pool1d_backward, (2, 7, 3)),
        ("avg_pool1d", lambda x: ops.pool1d_forward(x, 3, 1, "same", "avg"),
         ops.pool1d_backward, (2, 7, 3)),
        ("global_max_pool", lambda x: ops.global_pool_forward(x, "max"), ops.global_pool_backward,
         (2, 4, 4, 3)),
        ("global_avg_pool", lambda x: ops.global_pool_forward(x, "avg"), ops.global_pool_backward,
         (2, 4, 3)),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)  # fmt: skip
def test_dtype_preserved_and_inputs_untouched(name, forward, backward, x_shape, dtype, rng):
    x = rng.standard_normal(x_shape).astype(dtype)
    y, cache = assert_unmodified(forward, x)
    assert not np.shares_memory(y, x)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = assert_unmodified(lambda dy: backward(dy, cache), dy)
    assert y.dtype == dx.dtype == dtype
    assert dx.shape == x.shape


@pytest.mark.parametrize("name", ["max_pool2d", "avg_pool2d", "sum_pool2d"])
def test_public_functions_equal_forward(name, rng):
    x = rng.standard_normal((1, 5, 5, 2))
    y = getattr(ops, name)(x, 2, 1, "same")
    np.testing.assert_array_equal(y, getattr(ops, f"{name}_forward")(x, 2, 1, "same")[0])
    np.testing.assert_array_equal(y, getattr(reference, name)(x, 2, 1, "same"))


# ----------------------------------------------------------------------------------- errors


def test_pool_window_that_does_not_fit_is_refused():
    with pytest.raises(
        ValueError, match=re.escape("max_pool2d: pool window 3x3 does not fit input 2x2")
    ):
        ops.max_pool2d(np.zeros((1, 2, 2, 1)), 3)
    assert ops.max_pool2d(np.zeros((1, 2, 2, 1)), 3, padding="same").shape == (1, 1, 1, 1)


@pytest.mark.parametrize("padding", ["full", 1, ((0, 1), (0, 1))])
def test_pool_padding_must_be_valid_or_same(padding):
    with pytest.raises(ValueError, match="padding must be 'valid' or 'same'"):
        ops.avg_pool2d(np.zeros((1, 4, 4, 1)), 2, padding=padding)


def test_pool_input_rank_is_checked():
    with pytest.raises(ValueError, match=re.escape("x must be (N, H, W, D)")):
        ops.max_pool2d(np.zeros((4, 4, 1)), 2)
    with pytest.raises(ValueError, match=re.escape("x must be (N, L, D)")):
        ops.max_pool1d(np.zeros((1, 4, 4, 1)), 2)
