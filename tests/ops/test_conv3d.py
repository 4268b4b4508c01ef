"""conv3d and 3D pooling on NDHWC volumes: golden examples, fast vs reference loops, the PyTorch
oracle (conv3d, max_pool3d, avg_pool3d; forward and every gradient), float64 gradient checks and
errors."""

import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from ops_helpers import (
    assert_close,
    assert_unmodified,
    check_directions,
    check_grads,
    distinct,
    explicit_pads,
    from_nchw,
    from_torch,
    torch_pad,
)

from slidenet import ops
from slidenet.ops import reference_more as reference
from slidenet.ops.pool3d import pool3d_geometry
from torch_oracle import leaf, to_nchw

# id, x (N, Z, H, W, D), w (Fz, Fh, Fw, D, K), stride, padding, dilation
CONV3D_CASES = [
    ("F2-S1-valid", (2, 3, 4, 3, 2), (2, 2, 2, 2, 3), 1, "valid", 1),
    ("F3-S2-same", (1, 4, 5, 5, 2), (3, 3, 3, 2, 2), 2, "same", 1),
    ("F(1,3,2)-S(1,2,1)-pads", (2, 3, 5, 4, 1), (1, 3, 2, 1, 2), (1, 2, 1),
     ((0, 1), (1, 2), (0, 0)), 1),
    ("F2-dil(1,2,2)", (1, 3, 5, 5, 2), (2, 2, 2, 2, 2), 1, "valid", (1, 2, 2)),
    ("F1-S2", (1, 3, 3, 3, 3), (1, 1, 1, 3, 2), 2, "valid", 1),
    ("F1-S1-view", (2, 2, 3, 2, 3), (1, 1, 1, 3, 2), 1, "valid", 1),
    ("F2-S3-same", (1, 4, 4, 5, 1), (2, 2, 2, 1, 2), 3, "same", 1),
    ("F3-pad1", (1, 2, 3, 3, 2), (3, 3, 3, 2, 1), 1, 1, 1),
]  # fmt: skip
CONV3D_IDS = [c[0] for c in CONV3D_CASES]

# id, x (N, Z, H, W, D), pool, stride, padding
POOL3D_CASES = [
    ("P2-valid", (2, 4, 4, 4, 2), 2, None, "valid"),
    ("P2-same-odd", (1, 3, 5, 5, 2), 2, None, "same"),
    ("P(1,3,2)-S(1,2,1)", (1, 3, 5, 4, 2), (1, 3, 2), (1, 2, 1), "valid"),
    ("P3-S2-same-overlap", (1, 5, 4, 5, 1), 3, 2, "same"),
    ("P2-S1-overlap", (1, 3, 3, 4, 2), 2, 1, "valid"),
]
POOL3D_IDS = [c[0] for c in POOL3D_CASES]


def _data(rng, x_shape, w_shape, dtype=np.float64):
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[-1]).astype(dtype)
    return x, w, b


def _triple(v):
    return (v,) * 3 if isinstance(v, int) else tuple(v)


# ------------------------------------------------------------------------------------- golden


def test_volume_of_identical_slices_with_a_flat_kernel_is_conv2d_per_slice(rng):
    """A kernel of extent 1 along Z convolves each slice on its own: conv2d slice by slice."""
    x, w, b = _data(rng, (2, 3, 5, 4, 2), (1, 3, 2, 2, 3))
    y = ops.conv3d(x, w, b, stride=(1, 2, 1), padding="same")
    for z in range(3):
        want = ops.conv2d(x[:, z], w[0], b, stride=(2, 1), padding="same")
        np.testing.assert_allclose(y[:, z], want, rtol=1e-12, atol=1e-12)


def test_keras_example_shape_26_from_28_and_a_box_kernel_counts_cells():
    """Keras' docs: Conv3D(2, 3) on 28x28x28 volumes gives 26x26x26 (here on 6x6x6 -> 4x4x4)."""
    x = np.ones((1, 6, 6, 6, 1))
    y = ops.conv3d(x, np.ones((3, 3, 3, 1, 2)), np.array([0.0, 1.0]))
    assert y.shape == (1, 4, 4, 4, 2)
    np.testing.assert_array_equal(y[..., 0], 27.0)
    np.testing.assert_array_equal(y[..., 1], 28.0)
    same = ops.conv3d(x, np.ones((3, 3, 3, 1, 1)), padding="same")[0, :, :, :, 0]
    assert (
        same[0, 0, 0] == 8 and same[0, 0, 1] == 12 and same[1, 1, 1] == 27
    )  # corner, edge, inside


def test_max_and_avg_pool_of_a_2x2x2_cube():
    x = np.arange(16.0).reshape(1, 2, 2, 4, 1)  # two 2x2x2 cubes side by side along W
    np.testing.assert_array_equal(ops.max_pool3d(x, 2)[0, 0, 0, :, 0], [13.0, 15.0])
    np.testing.assert_array_equal(ops.avg_pool3d(x, 2)[0, 0, 0, :, 0], [6.5, 8.5])


def test_avg_pool_same_averages_the_real_cells_only():
    """Keras' 'same' average: a border window holding 4 real cells divides by 4, not 8."""
    x = np.ones((1, 3, 3, 3, 1))
    y = ops.avg_pool3d(x, 2, padding="same")
    assert y.shape == (1, 2, 2, 2, 1)
    np.testing.assert_array_equal(y, 1.0)


def test_max_pool_ties_send_the_gradient_once():
    y, cache = ops.max_pool3d_forward(np.zeros((1, 2, 2, 2, 1)), 2)
    dx = ops.max_pool3d_backward(np.ones_like(y), cache)
    assert dx.sum() == 1.0 and dx[0, 0, 0, 0, 0] == 1.0  # the first cell in window order


# ------------------------------------------------------------------------ fast vs reference


@pytest.mark.parametrize(("case", "x_shape", "w_shape", "stride", "padding", "dilation"),
                         CONV3D_CASES, ids=CONV3D_IDS)  # fmt: skip
def test_conv3d_matches_reference(case, x_shape, w_shape, stride, padding, dilation, rng):
    x, w, b = _data(rng, x_shape, w_shape)
    y, cache = ops.conv3d_forward(x, w, b, stride=stride, padding=padding, dilation=dilation)
    assert_close(y, reference.conv3d(x, w, b, stride, padding, dilation), op="conv3d y",
                 check="ref-f64")  # fmt: skip
    dy = rng.standard_normal(y.shape)
    want = reference.conv3d_backward(x, w, dy, stride, padding, dilation)
    for name, got, ref in zip(
        ("dx", "dw", "db"), ops.conv3d_backward(dy, cache), want, strict=True
    ):
        assert_close(got, ref, op=f"conv3d {name}", check="ref-f64")


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize(("case", "x_shape", "pool", "stride", "padding"), POOL3D_CASES,
                         ids=POOL3D_IDS)  # fmt: skip
def test_pool3d_matches_reference(case, x_shape, pool, stride, padding, kind, rng):
    x = distinct(rng, x_shape)
    y, cache = ops.pool3d_forward(x, pool, stride, padding, kind)
    assert_close(y, reference.pool3d(x, pool, stride, padding, kind), op=f"{kind}_pool3d y",
                 check="ref-f64")  # fmt: skip
    dy = rng.standard_normal(y.shape)
    assert_close(ops.pool3d_backward(dy, cache),
                 reference.pool3d_backward(x, dy, pool, stride, padding, kind),
                 op=f"{kind}_pool3d dx", check="ref-f64")  # fmt: skip


# ------------------------------------------------------------------------------- PyTorch oracle


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("case", "x_shape", "w_shape", "stride", "padding", "dilation"),
                         CONV3D_CASES, ids=CONV3D_IDS)  # fmt: skip
def test_conv3d_matches_torch(case, x_shape, w_shape, stride, padding, dilation, dtype, rng):
    x, w, b = _data(rng, x_shape, w_shape, dtype)
    y, cache = ops.conv3d_forward(x, w, b, stride=stride, padding=padding, dilation=dilation)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx, dw, db = ops.conv3d_backward(dy, cache)
    strides, dilations = _triple(stride), _triple(dilation)
    pads = explicit_pads(padding, x_shape[1:4], w_shape[:3], strides, dilations)
    xt, wt, bt = to_nchw(x), leaf(w.transpose(4, 3, 0, 1, 2)), leaf(b)
    yt = F.conv3d(torch_pad(xt, pads), wt, bt, stride=strides, dilation=dilations)
    (yt * to_nchw(dy, grad=False)).sum().backward()
    check = f"torch-{np.dtype(dtype).name}"
    assert y.dtype == dx.dtype == dw.dtype == db.dtype == dtype
    assert_close(y, from_nchw(yt), op="conv3d y", check=check)
    assert_close(dx, from_nchw(xt.grad), op="conv3d dx", check=check)
    assert_close(dw, from_torch(wt.grad).transpose(2, 3, 4, 1, 0), op="conv3d dw", check=check)
    assert_close(db, bt.grad, op="conv3d db", check=check)


def _torch_pool3d(xt, pool, strides, pads, kind):
    """torch on explicitly padded input; avg over the real cells = sum pool / count pool."""
    if kind == "max":
        return F.max_pool3d(torch_pad(xt, pads, float("-inf")), pool, strides)
    ones = torch.ones_like(xt[:1, :1])
    return F.avg_pool3d(torch_pad(xt, pads), pool, strides) / F.avg_pool3d(
        torch_pad(ones, pads), pool, strides
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize(("case", "x_shape", "pool", "stride", "padding"), POOL3D_CASES,
                         ids=POOL3D_IDS)  # fmt: skip
def test_pool3d_matches_torch(case, x_shape, pool, stride, padding, kind, dtype, rng):
    x = distinct(rng, x_shape, dtype)
    y, cache = ops.pool3d_forward(x, pool, stride, padding, kind)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = ops.pool3d_backward(dy, cache)
    pads, pool3, strides, _ = pool3d_geometry(x_shape, pool, stride, padding)
    assert pads == explicit_pads(padding, x_shape[1:4], pool3, strides, (1, 1, 1))
    xt = to_nchw(x)
    yt = _torch_pool3d(xt, pool3, strides, pads, kind)
    (yt * to_nchw(dy, grad=False)).sum().backward()
    check = f"torch-{np.dtype(dtype).name}"
    assert y.dtype == dx.dtype == dtype
    assert_close(y, from_nchw(yt), op=f"{kind}_pool3d y", check=check)
    assert_close(dx, from_nchw(xt.grad), op=f"{kind}_pool3d dx", check=check)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_avg_pool3d_same_equals_torch_count_include_pad_false(dtype, rng):
    """Where 'same' pads symmetrically, torch's own padding with count_include_pad=False agrees."""
    x = distinct(rng, (1, 3, 4, 4, 2), dtype)
    y, cache = ops.avg_pool3d_forward(x, 3, 1, "same")  # pads (1, 1) on every axis
    dy = rng.standard_normal(y.shape).astype(dtype)
    xt = to_nchw(x)
    yt = F.avg_pool3d(xt, 3, 1, padding=1, count_include_pad=False)
    (yt * to_nchw(dy, grad=False)).sum().backward()
    check = f"torch-{np.dtype(dtype).name}"
    assert_close(y, from_nchw(yt), op="avg_pool3d y", check=check)
    assert_close(ops.avg_pool3d_backward(dy, cache), from_nchw(xt.grad), op="avg_pool3d dx",
                 check=check)  # fmt: skip


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_global_pool_of_volumes_matches_torch(kind, dtype, rng):
    x = distinct(rng, (2, 3, 2, 4, 3), dtype)
    y, cache = ops.global_pool_forward(x, kind)
    dy = rng.standard_normal(y.shape).astype(dtype)
    xt = leaf(x)
    yt = xt.amax(dim=(1, 2, 3)) if kind == "max" else xt.mean(dim=(1, 2, 3))
    (yt * leaf(dy, grad=False)).sum().backward()
    check = f"torch-{np.dtype(dtype).name}"
    assert_close(y, yt, op=f"global_{kind}_pool3d y", check=check)
    assert_close(ops.global_pool_backward(dy, cache), xt.grad, op=f"global_{kind}_pool3d dx",
                 check=check)  # fmt: skip


# ------------------------------------------------------------------------ numerical gradients


@pytest.mark.parametrize(("case", "x_shape", "w_shape", "stride", "padding", "dilation"),
                         CONV3D_CASES, ids=CONV3D_IDS)  # fmt: skip
def test_conv3d_gradcheck(case, x_shape, w_shape, stride, padding, dilation, rng):
    x, w, b = _data(rng, x_shape, w_shape)
    y, cache = ops.conv3d_forward(x, w, b, stride=stride, padding=padding, dilation=dilation)
    g = rng.standard_normal(y.shape)
    dx, dw, db = ops.conv3d_backward(g, cache)

    def f(x, w, b):
        y = ops.conv3d_forward(x, w, b, stride=stride, padding=padding, dilation=dilation)[0]
        return float(np.sum(y * g))

    inputs, grads = {"x": x, "w": w, "b": b}, {"x": dx, "w": dw, "b": db}
    if x.size + w.size <= 200:
        check_grads(f, inputs, grads, op="conv3d")
    check_directions(f, inputs, grads, rng, op="conv3d")


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize(("case", "x_shape", "pool", "stride", "padding"), POOL3D_CASES,
                         ids=POOL3D_IDS)  # fmt: skip
def test_pool3d_gradcheck(case, x_shape, pool, stride, padding, kind, rng):
    x = distinct(rng, x_shape)
    y, cache = ops.pool3d_forward(x, pool, stride, padding, kind)
    g = rng.standard_normal(y.shape)

    def f(x):
        return float(np.sum(ops.pool3d_forward(x, pool, stride, padding, kind)[0] * g))

    grads = {"x": ops.pool3d_backward(g, cache)}
    if x.size <= 100:
        check_grads(f, {"x": x}, grads, op=f"{kind}_pool3d")
    check_directions(f, {"x": x}, grads, rng, op=f"{kind}_pool3d")


# ------------------------------------------------------------------ dtype, inputs, public API


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_kept_inputs_untouched_and_public_ops_equal_forward(dtype, rng):
    x, w, b = _data(rng, (1, 3, 4, 4, 2), (2, 3, 2, 2, 2), dtype)
    y, cache = assert_unmodified(
        lambda x, w, b: ops.conv3d_forward(x, w, b, stride=(1, 2, 1), padding="same"), x, w, b
    )
    dy = rng.standard_normal(y.shape).astype(dtype)
    grads = assert_unmodified(lambda d: ops.conv3d_backward(d, cache), dy)
    assert all(g.dtype == dtype for g in grads)
    np.testing.assert_array_equal(ops.conv3d(x, w, b, (1, 2, 1), "same"), y)
    assert ops.conv3d_backward(dy, cache, need_dx=False)[0] is None
    for public, kind in ((ops.max_pool3d, "max"), (ops.avg_pool3d, "avg")):
        y, cache = assert_unmodified(lambda x, k=kind: ops.pool3d_forward(x, 2, 1, "same", k), x)
        assert y.dtype == ops.pool3d_backward(np.ones_like(y), cache).dtype == dtype
        np.testing.assert_array_equal(public(x, 2, 1, "same"), y)


def test_public_ops_take_lists_and_integers():
    x = np.arange(8).reshape(1, 2, 2, 2, 1).tolist()
    assert ops.conv3d(x, np.ones((2, 2, 2, 1, 1), int)).dtype == np.float32
    assert ops.max_pool3d(x, 2).item() == 7.0


# ---------------------------------------------------------------------------------- errors


def test_kernel_that_does_not_fit_names_shapes_and_fix():
    msg = ("conv3d: kernel 3x3x3 does not fit input 2x5x5 (Z x H x W) with padding='valid'. "
           "Use padding='same' or a kernel of at most 2x5x5.")  # fmt: skip
    with pytest.raises(ValueError, match=re.escape(msg)):
        ops.conv3d(np.zeros((1, 2, 5, 5, 1)), np.zeros((3, 3, 3, 1, 1)))
    with pytest.raises(ValueError, match=re.escape("kernel 2x2x2 (dilated to 3x3x3)")):
        ops.conv3d(np.zeros((1, 2, 5, 5, 1)), np.zeros((2, 2, 2, 1, 1)), dilation=2)


@pytest.mark.parametrize(
    ("x_shape", "w_shape", "message"),
    [
        ((1, 4, 4, 1), (2, 2, 2, 1, 1), r"x must be \(N, Z, H, W, D\)"),
        ((1, 4, 4, 4, 1), (2, 2, 1, 1), r"w must be \(Fz, Fh, Fw, D, K\)"),
        ((1, 4, 4, 4, 2), (2, 2, 2, 3, 1), "the filters span depth 3 but the input has depth 2"),
    ],
)
def test_conv3d_shape_errors(x_shape, w_shape, message):
    with pytest.raises(ValueError, match=message):
        ops.conv3d_forward(np.zeros(x_shape), np.zeros(w_shape))


def test_conv3d_bias_shape_and_algorithm_are_checked():
    x, w = np.zeros((1, 2, 2, 2, 1)), np.zeros((1, 1, 1, 1, 2))
    with pytest.raises(ValueError, match=r"b must have shape \(2,\)"):
        ops.conv3d_forward(x, w, np.zeros(3))
    with pytest.raises(ValueError, match="algorithm must be 'im2col'"):
        ops.conv3d_forward(x, w, algorithm="winograd")


def test_pool3d_errors():
    with pytest.raises(ValueError, match=re.escape("pool window 2x3x3 does not fit input 1x4x4")):
        ops.max_pool3d(np.zeros((1, 1, 4, 4, 1)), (2, 3, 3))
    with pytest.raises(ValueError, match="padding must be 'valid' or 'same'"):
        ops.avg_pool3d(np.zeros((1, 2, 2, 2, 1)), 2, padding=1)
    with pytest.raises(ValueError, match=r"x must be \(N, Z, H, W, D\)"):
        ops.max_pool3d_forward(np.zeros((1, 2, 2, 1)), 2)
    with pytest.raises(ValueError, match="spatial axis of size 0"):
        ops.max_pool3d(np.zeros((1, 0, 2, 2, 1)), 2)
