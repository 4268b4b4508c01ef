"""depthwise_conv2d, separable_conv2d, conv2d_grouped: small examples, fast vs reference loops,
PyTorch oracle (conv2d with groups), gradient checks, errors."""

import re

import numpy as np
import pytest
import torch.nn.functional as F
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
from slidenet.ops import reference_more as reference
from torch_oracle import leaf, to_nchw

# id, x (N, H, W, D), kernel (Fh, Fw), depth multiplier M, stride, padding, dilation
DW_CASES = [
    ("F3-M1-valid", (2, 5, 5, 3), (3, 3), 1, 1, "valid", 1),
    ("F3-M2-S2-same", (2, 7, 6, 2), (3, 3), 2, 2, "same", 1),
    ("F2x3-M3-S(2,1)-pads", (1, 6, 5, 2), (2, 3), 3, (2, 1), ((1, 0), (2, 1)), 1),
    ("F3-M1-dil2-same", (2, 6, 7, 3), (3, 3), 1, 1, "same", 2),
    ("F1-M2-S2", (1, 5, 5, 2), (1, 1), 2, 2, "valid", 1),
    ("F4-M1-S3-pad1", (1, 8, 7, 1), (4, 4), 1, 3, 1, 1),
]
DW_IDS = [c[0] for c in DW_CASES]

# id, x (N, H, W, D), kernel (Fh, Fw), groups G, filters K, stride, padding, dilation
GROUPED_CASES = [
    ("G2-F3-valid", (2, 5, 5, 4), (3, 3), 2, 6, 1, "valid", 1),
    ("G3-F3-S2-same", (1, 7, 6, 6), (3, 3), 3, 3, 2, "same", 1),
    ("G1-F2-pad1", (1, 4, 5, 2), (2, 2), 1, 3, 1, 1, 1),
    ("G4-F1x3-dil2", (2, 4, 8, 4), (1, 3), 4, 8, 1, "valid", 2),
    ("G2-F1-S2", (1, 5, 5, 4), (1, 1), 2, 2, 2, "valid", 1),
]
GROUPED_IDS = [c[0] for c in GROUPED_CASES]


def _rand(rng, *shapes, dtype=np.float64):
    return [rng.standard_normal(s).astype(dtype) for s in shapes]


def _dw_data(rng, x_shape, kernel, m, dtype=np.float64):
    d = x_shape[3]
    return _rand(rng, x_shape, (*kernel, d, m), (d * m,), dtype=dtype)


def _sep_data(rng, x_shape, kernel, m, dtype=np.float64, k=3):
    d = x_shape[3]
    return _rand(rng, x_shape, (*kernel, d, m), (1, 1, d * m, k), (k,), dtype=dtype)


def _grouped_data(rng, x_shape, kernel, g, k, dtype=np.float64):
    return _rand(rng, x_shape, (*kernel, x_shape[3] // g, k), (k,), dtype=dtype)


# ----------------------------------------------------------------------------------- examples


@pytest.mark.parametrize("impl", [ops, reference], ids=["fast", "reference"])
def test_each_channel_is_filtered_on_its_own(impl):
    """Channel 0 gets a box filter and the identity (M = 2); channel 1 a box filter and zero."""
    x = np.stack([np.arange(9.0).reshape(3, 3), 10 * np.ones((3, 3))], axis=-1)[None]
    w = np.zeros((3, 3, 2, 2))
    w[:, :, :, 0] = 1.0
    w[1, 1, 0, 1] = 1.0
    y = impl.depthwise_conv2d(x, w, np.array([0.0, 0.5, 1.0, 2.0]), padding="same")
    assert y.shape == (1, 3, 3, 4)  # output channel d*M + m
    assert y[0, 1, 1, 0] == 36.0  # box over channel 0 only
    np.testing.assert_array_equal(y[0, :, :, 1], x[0, :, :, 0] + 0.5)  # identity tap
    assert y[0, 1, 1, 2] == 90.0 + 1.0  # box over channel 1 only
    np.testing.assert_array_equal(y[0, :, :, 3], 2.0)  # a zero filter leaves the bias


def test_depthwise_is_grouped_with_one_channel_per_group(rng):
    x, w, b = _dw_data(rng, (2, 6, 5, 3), (3, 2), 2)
    want = ops.depthwise_conv2d(x, w, b, stride=2, padding="same")
    got = ops.conv2d_grouped(x, w.reshape(3, 2, 1, 6), b, groups=3, stride=2, padding="same")
    assert_close(got, want, op="depthwise_conv2d", check="as-grouped")


def test_grouped_is_a_block_diagonal_convolution(rng):
    """groups=G equals one ordinary convolution whose kernel is zero outside the G diagonal
    blocks (input-channel group g x filter group g)."""
    x, w, b = _grouped_data(rng, (2, 5, 6, 4), (3, 3), 2, 6)
    full = np.zeros((3, 3, 4, 6))
    full[:, :, :2, :3], full[:, :, 2:, 3:] = w[..., :3], w[..., 3:]
    got = ops.conv2d_grouped(x, w, b, groups=2, padding=1)
    assert_close(
        got, ops.conv2d(x, full, b, padding=1), op="conv2d_grouped", check="block-diagonal"
    )
    assert_close(ops.conv2d_grouped(x, full, b, groups=1), ops.conv2d(x, full, b),
                 op="conv2d_grouped", check="block-diagonal")  # fmt: skip


def test_separable_is_depthwise_then_1x1_and_has_fewer_weights(rng):
    x, dk, pk, b = _sep_data(rng, (2, 6, 6, 4), (3, 3), 2, k=5)
    y = ops.separable_conv2d(x, dk, pk, b, stride=2, padding="same")
    z = ops.depthwise_conv2d(x, dk, stride=2, padding="same")
    assert_close(y, ops.conv2d(z, pk, b), op="separable_conv2d", check="composition")
    assert dk.size + pk.size + b.size == 3 * 3 * 4 * 2 + 4 * 2 * 5 + 5 == 117
    assert (3 * 3 * 4 + 1) * 5 == 185  # an ordinary 3x3 Conv2D with 5 filters


# ------------------------------------------------------------------- fast path vs reference loops


@pytest.mark.parametrize(("case", "x_shape", "kernel", "m", "stride", "padding", "dilation"),
                         DW_CASES, ids=DW_IDS)  # fmt: skip
def test_depthwise_matches_reference(case, x_shape, kernel, m, stride, padding, dilation, rng):
    x, w, b = _dw_data(rng, x_shape, kernel, m)
    y, cache = ops.depthwise_conv2d_forward(x, w, b, stride=stride, padding=padding,
                                            dilation=dilation)  # fmt: skip
    dy = rng.standard_normal(y.shape)
    fast = (y, *ops.depthwise_conv2d_backward(dy, cache))
    ref = (reference.depthwise_conv2d(x, w, b, stride, padding, dilation),
           *reference.depthwise_conv2d_backward(x, w, dy, stride, padding, dilation))  # fmt: skip
    for name, got, want in zip(["y", "dx", "dw", "db"], fast, ref, strict=True):
        assert_close(got, want, op=f"depthwise_conv2d {name}", check="ref-f64")


@pytest.mark.parametrize(("case", "x_shape", "kernel", "m", "stride", "padding", "dilation"),
                         DW_CASES, ids=DW_IDS)  # fmt: skip
def test_separable_matches_reference(case, x_shape, kernel, m, stride, padding, dilation, rng):
    x, dk, pk, b = _sep_data(rng, x_shape, kernel, m)
    y, cache = ops.separable_conv2d_forward(x, dk, pk, b, stride=stride, padding=padding,
                                            dilation=dilation)  # fmt: skip
    dy = rng.standard_normal(y.shape)
    fast = (y, *ops.separable_conv2d_backward(dy, cache))
    args = (stride, padding, dilation)
    ref = (reference.separable_conv2d(x, dk, pk, b, *args),
           *reference.separable_conv2d_backward(x, dk, pk, dy, *args))  # fmt: skip
    for name, got, want in zip(["y", "dx", "ddk", "dpk", "db"], fast, ref, strict=True):
        assert_close(got, want, op=f"separable_conv2d {name}", check="ref-f64")


@pytest.mark.parametrize(("case", "x_shape", "kernel", "g", "k", "stride", "padding", "dilation"),
                         GROUPED_CASES, ids=GROUPED_IDS)  # fmt: skip
def test_grouped_matches_reference(case, x_shape, kernel, g, k, stride, padding, dilation, rng):
    x, w, b = _grouped_data(rng, x_shape, kernel, g, k)
    y, cache = ops.conv2d_grouped_forward(x, w, b, groups=g, stride=stride, padding=padding,
                                          dilation=dilation)  # fmt: skip
    dy = rng.standard_normal(y.shape)
    fast = (y, *ops.conv2d_grouped_backward(dy, cache))
    ref = (reference.conv2d_grouped(x, w, b, g, stride, padding, dilation),
           *reference.conv2d_grouped_backward(x, w, dy, g, stride, padding, dilation))  # fmt: skip
    for name, got, want in zip(["y", "dx", "dw", "db"], fast, ref, strict=True):
        assert_close(got, want, op=f"conv2d_grouped {name}", check="ref-f64")


# ------------------------------------------------------------------------------- PyTorch oracle


def _torch_padded(x, kernel, stride, padding, dilation):
    pads = explicit_pads(padding, x.shape[1:3], kernel, as_pair(stride), as_pair(dilation))
    xt = to_nchw(x)
    return xt, torch_pad(xt, pads)


def _depthwise_weight(w):
    """(Fh, Fw, D, M) -> torch's (D*M, 1, Fh, Fw): output channel d*M + m, as Keras orders it."""
    fh, fw, d, m = w.shape
    return leaf(w.reshape(fh, fw, d * m).transpose(2, 0, 1)[:, None])


def _depthwise_grad(t, shape):
    return from_torch(t.grad)[:, 0].transpose(1, 2, 0).reshape(shape)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("case", "x_shape", "kernel", "m", "stride", "padding", "dilation"),
                         DW_CASES, ids=DW_IDS)  # fmt: skip
def test_depthwise_matches_torch(case, x_shape, kernel, m, stride, padding, dilation, dtype, rng):
    x, w, b = _dw_data(rng, x_shape, kernel, m, dtype)
    y, cache = ops.depthwise_conv2d_forward(x, w, b, stride=stride, padding=padding,
                                            dilation=dilation)  # fmt: skip
    dy = rng.standard_normal(y.shape).astype(dtype)
    fast = (y, *ops.depthwise_conv2d_backward(dy, cache))
    xt, xp = _torch_padded(x, kernel, stride, padding, dilation)
    wt, bt = _depthwise_weight(w), leaf(b)
    yt = F.conv2d(xp, wt, bt, stride=as_pair(stride), dilation=as_pair(dilation),
                  groups=x.shape[3])  # fmt: skip
    (yt * to_nchw(dy, grad=False)).sum().backward()
    oracle = (from_nchw(yt), from_nchw(xt.grad), _depthwise_grad(wt, w.shape), from_torch(bt.grad))
    for name, got, want in zip(["y", "dx", "dw", "db"], fast, oracle, strict=True):
        assert got.dtype == dtype, name
        assert_close(got, want, op=f"depthwise_conv2d {name}",
                     check=f"torch-{np.dtype(dtype).name}")  # fmt: skip


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("case", "x_shape", "kernel", "m", "stride", "padding", "dilation"),
                         DW_CASES, ids=DW_IDS)  # fmt: skip
def test_separable_matches_torch(case, x_shape, kernel, m, stride, padding, dilation, dtype, rng):
    x, dk, pk, b = _sep_data(rng, x_shape, kernel, m, dtype)
    y, cache = ops.separable_conv2d_forward(x, dk, pk, b, stride=stride, padding=padding,
                                            dilation=dilation)  # fmt: skip
    dy = rng.standard_normal(y.shape).astype(dtype)
    fast = (y, *ops.separable_conv2d_backward(dy, cache))
    xt, xp = _torch_padded(x, kernel, stride, padding, dilation)
    dkt, pkt, bt = _depthwise_weight(dk), leaf(pk.transpose(3, 2, 0, 1)), leaf(b)
    zt = F.conv2d(xp, dkt, None, stride=as_pair(stride), dilation=as_pair(dilation),
                  groups=x.shape[3])  # fmt: skip
    yt = F.conv2d(zt, pkt, bt)
    (yt * to_nchw(dy, grad=False)).sum().backward()
    oracle = (from_nchw(yt), from_nchw(xt.grad), _depthwise_grad(dkt, dk.shape),
              from_torch(pkt.grad).transpose(2, 3, 1, 0), from_torch(bt.grad))  # fmt: skip
    for name, got, want in zip(["y", "dx", "ddk", "dpk", "db"], fast, oracle, strict=True):
        assert got.dtype == dtype, name
        assert_close(got, want, op=f"separable_conv2d {name}",
                     check=f"torch-{np.dtype(dtype).name}")  # fmt: skip


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("case", "x_shape", "kernel", "g", "k", "stride", "padding", "dilation"),
                         GROUPED_CASES, ids=GROUPED_IDS)  # fmt: skip
def test_grouped_matches_torch(case, x_shape, kernel, g, k, stride, padding, dilation, dtype, rng):
    x, w, b = _grouped_data(rng, x_shape, kernel, g, k, dtype)
    y, cache = ops.conv2d_grouped_forward(x, w, b, groups=g, stride=stride, padding=padding,
                                          dilation=dilation)  # fmt: skip
    dy = rng.standard_normal(y.shape).astype(dtype)
    fast = (y, *ops.conv2d_grouped_backward(dy, cache))
    xt, xp = _torch_padded(x, kernel, stride, padding, dilation)
    wt, bt = leaf(w.transpose(3, 2, 0, 1)), leaf(b)  # (K, D/G, Fh, Fw)
    yt = F.conv2d(xp, wt, bt, stride=as_pair(stride), dilation=as_pair(dilation), groups=g)
    (yt * to_nchw(dy, grad=False)).sum().backward()
    oracle = (from_nchw(yt), from_nchw(xt.grad), from_torch(wt.grad).transpose(2, 3, 1, 0),
              from_torch(bt.grad))  # fmt: skip
    for name, got, want in zip(["y", "dx", "dw", "db"], fast, oracle, strict=True):
        assert got.dtype == dtype, name
        assert_close(got, want, op=f"conv2d_grouped {name}",
                     check=f"torch-{np.dtype(dtype).name}")  # fmt: skip


# ------------------------------------------------------------------------ numerical gradients


@pytest.mark.parametrize(
    ("m", "stride", "padding", "dilation"),
    [(1, 1, "valid", 1), (2, 2, "same", 1), (2, (2, 1), ((1, 0), (0, 2)), 1), (1, 1, "same", 2)],
    ids=["M1-valid", "M2-S2-same", "M2-S(2,1)-pads", "M1-same-dil2"],
)
def test_depthwise_and_separable_gradcheck_all_entries(m, stride, padding, dilation, rng):
    kw = {"stride": stride, "padding": padding, "dilation": dilation}
    x, w, b = _dw_data(rng, (1, 4, 4, 2), (3, 2), m)
    y, cache = ops.depthwise_conv2d_forward(x, w, b, **kw)
    g = rng.standard_normal(y.shape)
    dx, dw, db = ops.depthwise_conv2d_backward(g, cache)

    def f(x, w, b):
        return float(np.sum(ops.depthwise_conv2d_forward(x, w, b, **kw)[0] * g))

    check_grads(f, {"x": x, "w": w, "b": b}, {"x": dx, "w": dw, "b": db}, op="depthwise_conv2d")

    x, dk, pk, b = _sep_data(rng, (1, 4, 4, 2), (3, 2), m, k=2)
    y, cache = ops.separable_conv2d_forward(x, dk, pk, b, **kw)
    g = rng.standard_normal(y.shape)
    dx, ddk, dpk, db = ops.separable_conv2d_backward(g, cache)

    def fs(x, dk, pk, b):
        return float(np.sum(ops.separable_conv2d_forward(x, dk, pk, b, **kw)[0] * g))

    check_grads(fs, {"x": x, "dk": dk, "pk": pk, "b": b},
                {"x": dx, "dk": ddk, "pk": dpk, "b": db}, op="separable_conv2d")  # fmt: skip


@pytest.mark.parametrize(("case", "x_shape", "kernel", "g", "k", "stride", "padding", "dilation"),
                         GROUPED_CASES, ids=GROUPED_IDS)  # fmt: skip
def test_grouped_gradcheck_directions(case, x_shape, kernel, g, k, stride, padding, dilation, rng):
    kw = {"groups": g, "stride": stride, "padding": padding, "dilation": dilation}
    x, w, b = _grouped_data(rng, x_shape, kernel, g, k)
    y, cache = ops.conv2d_grouped_forward(x, w, b, **kw)
    dy = rng.standard_normal(y.shape)
    dx, dw, db = ops.conv2d_grouped_backward(dy, cache)

    def f(x, w, b):
        return float(np.sum(ops.conv2d_grouped_forward(x, w, b, **kw)[0] * dy))

    check_directions(f, {"x": x, "w": w, "b": b}, {"x": dx, "w": dw, "b": db}, rng,
                     op="conv2d_grouped")  # fmt: skip


def test_grouped_gradcheck_all_entries(rng):
    x, w, b = _grouped_data(rng, (1, 4, 3, 4), (2, 2), 2, 4)
    y, cache = ops.conv2d_grouped_forward(x, w, b, groups=2, stride=2, padding="same")
    g = rng.standard_normal(y.shape)
    dx, dw, db = ops.conv2d_grouped_backward(g, cache)

    def f(x, w, b):
        return float(np.sum(ops.conv2d_grouped(x, w, b, 2, 2, "same") * g))

    check_grads(f, {"x": x, "w": w, "b": b}, {"x": dx, "w": dw, "b": db}, op="conv2d_grouped")


# ---------------------------------------------------------------------------- dtype and purity


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", ["depthwise_conv2d", "separable_conv2d", "conv2d_grouped"])
def test_dtype_preserved_inputs_untouched_and_need_dx(op, dtype, rng):
    forward, backward = getattr(ops, f"{op}_forward"), getattr(ops, f"{op}_backward")
    if op == "depthwise_conv2d":
        arrays, kw = _dw_data(rng, (2, 5, 4, 2), (3, 3), 2, dtype), {}
    elif op == "separable_conv2d":
        arrays, kw = _sep_data(rng, (2, 5, 4, 2), (3, 3), 2, dtype), {}
    else:
        arrays, kw = _grouped_data(rng, (2, 5, 4, 4), (3, 3), 2, 4, dtype), {"groups": 2}
    y, cache = assert_unmodified(lambda *a: forward(*a, stride=2, padding="same", **kw), *arrays)
    dy = rng.standard_normal(y.shape).astype(dtype)
    grads = assert_unmodified(lambda dy: backward(dy, cache), dy)
    assert [a.dtype for a in (y, *grads)] == [dtype] * (1 + len(arrays))
    assert [g.shape for g in grads] == [a.shape for a in arrays]
    without_dx = backward(dy, cache, need_dx=False)
    assert without_dx[0] is None
    for first, second in zip(grads[1:], without_dx[1:], strict=True):
        np.testing.assert_array_equal(first, second)
    y0, no_bias = forward(*arrays[:-1], **kw)
    assert backward(np.ones_like(y0), no_bias)[-1] is None


# ----------------------------------------------------------------------------------- errors


def test_groups_must_divide_filters_and_channels():
    x = np.zeros((1, 5, 5, 4))
    with pytest.raises(ValueError, match=re.escape("filters (6) must be divisible by groups (4)")
                       ) as info:  # fmt: skip
        ops.conv2d_grouped(x, np.zeros((3, 3, 1, 6)), groups=4)
    assert "groups in [1, 2, 3, 6]" in str(info.value)
    with pytest.raises(ValueError, match=re.escape("input channels (4) must be divisible by groups "
                                                   "(3)")):  # fmt: skip
        ops.conv2d_grouped(x, np.zeros((3, 3, 1, 6)), groups=3)
    with pytest.raises(ValueError, match=re.escape("w must be (Fh, Fw, 2, K), got (3, 3, 4, 6)")):
        ops.conv2d_grouped(x, np.zeros((3, 3, 4, 6)), groups=2)
    with pytest.raises(ValueError, match="groups must be a positive integer"):
        ops.conv2d_grouped(x, np.zeros((3, 3, 4, 6)), groups=0)


def test_a_kernel_that_does_not_fit_names_the_op():
    for call, who in [
        (lambda: ops.depthwise_conv2d(np.zeros((1, 3, 3, 2)), np.zeros((5, 5, 2, 1))),
         "depthwise_conv2d"),
        (lambda: ops.separable_conv2d(np.zeros((1, 3, 3, 2)), np.zeros((5, 5, 2, 1)),
                                      np.zeros((1, 1, 2, 3))), "separable_conv2d"),
        (lambda: ops.conv2d_grouped(np.zeros((1, 3, 3, 2)), np.zeros((5, 5, 1, 2)), groups=2),
         "conv2d_grouped"),
    ]:  # fmt: skip
        with pytest.raises(ValueError, match=rf"^{who}: kernel 5x5 does not fit input 3x3"):
            call()


def test_bad_kernel_shapes_are_refused():
    x = np.zeros((1, 4, 4, 2))
    with pytest.raises(
        ValueError, match=re.escape("kernel has 3 channels but the input has depth 2")
    ):
        ops.depthwise_conv2d(x, np.zeros((3, 3, 3, 1)))
    with pytest.raises(ValueError, match=re.escape("b must have shape (4,)")):
        ops.depthwise_conv2d(x, np.zeros((3, 3, 2, 2)), np.zeros(2))
    with pytest.raises(ValueError, match=re.escape("pointwise_kernel must be (1, 1, D*M, K) = "
                                                   "(1, 1, 4, K)")):  # fmt: skip
        ops.separable_conv2d(x, np.zeros((3, 3, 2, 2)), np.zeros((1, 1, 2, 3)))
