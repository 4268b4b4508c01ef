"""conv_transpose2d / conv_transpose1d: the lectures' picture, the input gradient of a convolution,
fast vs reference loops, PyTorch oracle (conv_transpose2d / conv_transpose1d), gradient checks."""

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
    from_nchw,
    from_torch,
    torch_pad,
)

from slidenet import ops
from slidenet.ops import reference_more as reference
from slidenet.ops.conv_transpose import conv_transpose_geometry
from torch_oracle import leaf, to_nchw

# id, x (N, H, W, D_in), w (Fh, Fw, K_out, D_in), stride, padding, output_padding, dilation
CT2D_CASES = [
    ("F3-S2-valid", (2, 3, 3, 2), (3, 3, 2, 2), 2, "valid", None, 1),
    ("F3-S2-same-asym", (2, 3, 4, 2), (3, 3, 3, 2), 2, "same", None, 1),
    ("F2-S3-valid-extends", (1, 3, 2, 2), (2, 2, 2, 2), 3, "valid", None, 1),
    ("F4-S2-same", (1, 3, 3, 2), (4, 4, 3, 2), 2, "same", None, 1),
    ("F3-S2-same-op1", (1, 3, 2, 2), (3, 3, 2, 2), 2, "same", 1, 1),
    ("F4-S2-same-op0", (1, 3, 3, 1), (4, 4, 2, 1), 2, "same", 0, 1),
    ("F3-S2-pad1-op1", (2, 3, 3, 2), (3, 3, 3, 2), 2, 1, 1, 1),
    ("F3-S(2,1)-pad((1,2),(0,1))", (1, 3, 4, 2), (3, 3, 2, 2), (2, 1), ((1, 2), (0, 1)), None, 1),
    ("F3-S1-dil2-same", (1, 4, 4, 2), (3, 3, 2, 2), 1, "same", None, 2),
    ("F2x3-S(2,3)-op(1,2)-dil(2,1)", (1, 2, 3, 1), (2, 3, 2, 1), (2, 3), "valid", (1, 2), (2, 1)),
    ("F1-S2-same", (1, 3, 3, 2), (1, 1, 2, 2), 2, "same", None, 1),
    ("F5-S3-same", (1, 2, 3, 1), (5, 5, 2, 1), 3, "same", None, 1),
    ("F3-S1-valid-1x1-input", (2, 1, 1, 3), (3, 3, 2, 3), 1, "valid", None, 1),
    ("F2-S2-pad(1,0)", (1, 3, 3, 2), (2, 2, 2, 2), 2, (1, 0), None, 1),
]
CT2D_IDS = [c[0] for c in CT2D_CASES]

# id, x (N, L, D_in), w (F, K_out, D_in), stride, padding, output_padding, dilation
CT1D_CASES = [
    ("F3-S2-valid", (2, 4, 3), (3, 2, 3), 2, "valid", None, 1),
    ("F4-S3-same-op2", (2, 3, 2), (4, 3, 2), 3, "same", 2, 1),
    ("F3-S2-pad(1,2)", (1, 5, 2), (3, 2, 2), 2, (1, 2), None, 1),
    ("F2-S1-dil3-same", (2, 5, 2), (2, 2, 2), 1, "same", None, 3),
    ("F3-S2-pad1-op1", (1, 4, 2), (3, 3, 2), 2, 1, 1, 1),
    ("F1-S3-valid", (1, 3, 2), (1, 2, 2), 3, "valid", None, 1),
]
CT1D_IDS = [c[0] for c in CT1D_CASES]


def _data(rng, x_shape, w_shape, dtype=np.float64):
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[-2]).astype(dtype)
    return x, w, b


def _fast(x, w, b, dy_rng, stride, padding, output_padding, dilation, rank=2):
    forward = ops.conv_transpose2d_forward if rank == 2 else ops.conv_transpose1d_forward
    backward = ops.conv_transpose2d_backward if rank == 2 else ops.conv_transpose1d_backward
    y, cache = forward(
        x, w, b, stride=stride, padding=padding, output_padding=output_padding, dilation=dilation
    )
    dy = dy_rng.standard_normal(y.shape).astype(x.dtype)
    return y, dy, backward(dy, cache)


# ------------------------------------------------------------------------- golden (the lectures)


@pytest.mark.parametrize("impl", [ops, reference], ids=["fast", "reference"])
def test_each_input_pixel_spreads_the_kernel_onto_its_window(impl):
    """Stride 2, kernel 2x2: the windows tile the output, so each pixel paints its own 2x2 block
    with x * kernel; with stride 1 the windows overlap and add up."""
    x = np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 2, 2, 1)
    k = np.array([[1.0, 10.0], [100.0, 1000.0]]).reshape(2, 2, 1, 1)
    y = impl.conv_transpose2d(x, k, stride=2)[0, :, :, 0]
    np.testing.assert_array_equal(y[:2, :2], 1.0 * k[:, :, 0, 0])
    np.testing.assert_array_equal(y[2:, 2:], 4.0 * k[:, :, 0, 0])
    y1 = impl.conv_transpose2d(x, np.ones((2, 2, 1, 1)), stride=1)[0, :, :, 0]
    np.testing.assert_array_equal(y1, [[1, 3, 2], [4, 10, 6], [3, 7, 4]])


@pytest.mark.parametrize(
    ("n", "f", "s", "padding", "output_padding", "dilation", "want"),
    [
        (4, 3, 2, "valid", None, 1, 9),  # (4 - 1)*2 + max(3, 2)
        (4, 2, 3, "valid", None, 1, 12),  # (4 - 1)*3 + max(2, 3): output_padding 1 by default
        (4, 3, 2, "valid", 1, 1, 10),  # (4 - 1)*2 + 3 + 1
        (4, 3, 2, "same", None, 1, 8),  # 4*2
        (4, 4, 2, "same", 0, 1, 6),  # (4 - 1)*2 + 4 % 2 + 0
        (4, 3, 2, "same", 1, 1, 8),  # (4 - 1)*2 + 3 % 2 + 1
        (4, 3, 2, 1, 1, 1, 8),  # PyTorch: (4 - 1)*2 + 3 - 2*1 + 1
        (5, 3, 1, "same", None, 2, 5),  # dilated extent 5, stride 1: same size
        (3, 3, 1, 0, None, 3, 9),  # (3 - 1)*1 + 7
    ],
)
def test_output_size_follows_keras(n, f, s, padding, output_padding, dilation, want):
    geo = conv_transpose_geometry((n,), (f,), s, padding, output_padding, dilation)
    assert geo.out == (want,)
    x = np.ones((1, n, n, 1))
    y = ops.conv_transpose2d(x, np.ones((f, f, 1, 1)), None, s, padding, output_padding, dilation)
    assert y.shape == (1, want, want, 1)


@pytest.mark.parametrize(
    ("h", "f", "s", "padding", "dilation"),
    [(7, 3, 2, "valid", 1), (8, 3, 2, "same", 1), (7, 4, 3, 1, 1), (9, 3, 2, ((1, 2), (0, 1)), 2),
     (6, 2, 2, "same", 1), (5, 1, 2, "valid", 1)],
    ids=["F3-S2-valid", "F3-S2-same", "F4-S3-pad1", "F3-S2-pads-dil2", "F2-S2-same", "F1-S2"],
)  # fmt: skip
def test_it_is_the_input_gradient_of_a_convolution(h, f, s, padding, dilation, rng):
    """conv2d_backward's dx for dy equals conv_transpose2d(dy) with the convolution's padding and
    output_padding = the rows and columns the strided convolution dropped."""
    x, w, _ = _data(rng, (2, h, h + 1, 2), (f, f, 2, 3))
    y, cache = ops.conv2d_forward(x, w, stride=s, padding=padding, dilation=dilation)
    dy = rng.standard_normal(y.shape)
    dx = ops.conv2d_backward(dy, cache)[0]
    (pt, pb), (pl, pr) = cache.pads
    fe = (f - 1) * dilation + 1
    dropped = tuple(n + p0 + p1 - ((o - 1) * s + fe) for n, (p0, p1), o in
                    zip(x.shape[1:3], cache.pads, y.shape[1:3], strict=True))  # fmt: skip
    crops = ((pt, pb), (pl, pr))
    got = ops.conv_transpose2d(dy, w, None, s, crops, dropped, dilation)
    assert_close(got, dx, op="conv_transpose2d", check="conv-adjoint")


@pytest.mark.parametrize(("f", "s", "dilation"), [(3, 2, 1), (4, 2, 1), (5, 3, 1), (3, 1, 2)])
def test_same_transposes_a_same_convolution(f, s, dilation, rng):
    """Keras' 'same' (output_padding None) is the input gradient of a 'same' convolution whose
    input is n*S: same output size n*S, same split of the padding."""
    x, w, _ = _data(rng, (1, 2 * s, 3 * s, 2), (f, f, 2, 3))
    y, cache = ops.conv2d_forward(x, w, stride=s, padding="same", dilation=dilation)
    dy = rng.standard_normal(y.shape)
    got = ops.conv_transpose2d(dy, w, None, s, "same", None, dilation)
    assert_close(
        got, ops.conv2d_backward(dy, cache)[0], op="conv_transpose2d", check="conv-adjoint"
    )


def test_conv1d_transpose_is_the_input_gradient_of_conv1d(rng):
    x, w, _ = _data(rng, (2, 9, 2), (3, 2, 4))
    y, cache = ops.conv1d_forward(x, w, stride=2, padding="same")
    dy = rng.standard_normal(y.shape)
    dx = ops.conv1d_backward(dy, cache)[0]
    assert_close(ops.conv_transpose1d(dy, w, stride=2, padding="same", output_padding=0)[:, :9], dx,
                 op="conv_transpose1d", check="conv-adjoint")  # fmt: skip


# ------------------------------------------------------------------- fast path vs reference loops


@pytest.mark.parametrize(("case", "x_shape", "w_shape", "stride", "padding", "op", "dilation"),
                         CT2D_CASES, ids=CT2D_IDS)  # fmt: skip
def test_conv_transpose2d_matches_reference(case, x_shape, w_shape, stride, padding, op, dilation,
                                            rng):  # fmt: skip
    x, w, b = _data(rng, x_shape, w_shape)
    y, dy, grads = _fast(x, w, b, rng, stride, padding, op, dilation)
    args = (stride, padding, op, dilation)
    ref = (reference.conv_transpose2d(x, w, b, *args),
           *reference.conv_transpose2d_backward(x, w, dy, *args))  # fmt: skip
    for name, got, want in zip(["y", "dx", "dw", "db"], (y, *grads), ref, strict=True):
        assert_close(got, want, op=f"conv_transpose2d {name}", check="ref-f64")


@pytest.mark.parametrize(("case", "x_shape", "w_shape", "stride", "padding", "op", "dilation"),
                         CT1D_CASES, ids=CT1D_IDS)  # fmt: skip
def test_conv_transpose1d_matches_reference(case, x_shape, w_shape, stride, padding, op, dilation,
                                            rng):  # fmt: skip
    x, w, b = _data(rng, x_shape, w_shape)
    y, dy, grads = _fast(x, w, b, rng, stride, padding, op, dilation, rank=1)
    args = (stride, padding, op, dilation)
    ref = (reference.conv_transpose1d(x, w, b, *args),
           *reference.conv_transpose1d_backward(x, w, dy, *args))  # fmt: skip
    for name, got, want in zip(["y", "dx", "dw", "db"], (y, *grads), ref, strict=True):
        assert_close(got, want, op=f"conv_transpose1d {name}", check="ref-f64")


# ------------------------------------------------------------------------------- PyTorch oracle


def keras_crops(n, f, s, d, padding, op):
    """(crop at the start, crop at the end) of torch's full output (n - 1)*s + F_eff, written out
    from Keras 3's rule (its torch backend crops the same way); a negative crop extends."""
    fe = (f - 1) * d + 1
    if padding == "valid":
        return 0, -(max(fe, s) - fe if op is None else op)
    if padding == "same":
        pad_len = s + fe - 2 if op is None else fe + fe % 2 - 2 + op
        left = min(pad_len // 2 + pad_len % 2, fe - 1)
        return fe - 1 - left, fe - 1 - (pad_len - left)
    before, after = padding
    return before, after - (op or 0)


def _crops(x_hw, w_hw, stride, padding, op, dilation):
    specs = (padding,) * len(x_hw) if isinstance(padding, str) else padding
    if isinstance(padding, int):
        specs = ((padding, padding),) * len(x_hw)
    specs = [p if isinstance(p, str) else as_pair(p) for p in specs]
    ops_ = (op,) * len(x_hw) if op is None or isinstance(op, int) else op
    strides, dilations = as_pair(stride)[: len(x_hw)], as_pair(dilation)[: len(x_hw)]
    return [keras_crops(*a) for a in zip(x_hw, w_hw, strides, dilations, specs, ops_, strict=True)]


TORCH_PATHS: set[str] = set()


def _torch_conv_transpose(x, w, b, dy, stride, padding, op, dilation):
    """Forward and (dx, dw, db) by torch in float64. Where Keras' crops are torch's own (padding P
    at both ends, minus output_padding at the end) torch's padding/output_padding arguments are
    used; otherwise torch's full output is cropped (or extended) with F.pad and the bias added."""
    rank = x.ndim - 2
    strides, dilations = as_pair(stride)[:rank], as_pair(dilation)[:rank]
    crops = _crops(x.shape[1:-1], w.shape[:rank], stride, padding, op, dilation)
    perm = (3, 2, 0, 1) if rank == 2 else (2, 1, 0)
    xt, wt, bt = to_nchw(x), leaf(w.transpose(perm)), leaf(b)
    conv = F.conv_transpose2d if rank == 2 else F.conv_transpose1d
    pads = [c[0] for c in crops]
    extra = [c[0] - c[1] for c in crops]  # torch's output_padding
    native = all(p >= 0 for p in pads) and all(
        0 <= e < max(s, r) for e, s, r in zip(extra, strides, dilations, strict=True)
    )
    if native:
        TORCH_PATHS.add("padding/output_padding")
        yt = conv(xt, wt, bt, stride=strides, padding=pads, output_padding=extra,
                  dilation=dilations)  # fmt: skip
    else:
        TORCH_PATHS.add("full output + F.pad")
        full = conv(xt, wt, None, stride=strides, dilation=dilations)
        yt = torch_pad(full, [(-c0, -c1) for c0, c1 in crops]) + bt.reshape(-1, *(1,) * rank)
    (yt * to_nchw(dy, grad=False)).sum().backward()
    dw = from_torch(wt.grad).transpose(perm if rank == 1 else (2, 3, 1, 0))
    return from_nchw(yt), from_nchw(xt.grad), dw, from_torch(bt.grad)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("case", "x_shape", "w_shape", "stride", "padding", "op", "dilation"),
                         CT2D_CASES, ids=CT2D_IDS)  # fmt: skip
def test_conv_transpose2d_matches_torch(case, x_shape, w_shape, stride, padding, op, dilation,
                                        dtype, rng):  # fmt: skip
    x, w, b = _data(rng, x_shape, w_shape, dtype)
    y, dy, grads = _fast(x, w, b, rng, stride, padding, op, dilation)
    oracle = _torch_conv_transpose(x, w, b, dy, stride, padding, op, dilation)
    for name, got, want in zip(["y", "dx", "dw", "db"], (y, *grads), oracle, strict=True):
        assert got.dtype == dtype, name
        assert_close(got, want, op=f"conv_transpose2d {name}",
                     check=f"torch-{np.dtype(dtype).name}")  # fmt: skip


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("case", "x_shape", "w_shape", "stride", "padding", "op", "dilation"),
                         CT1D_CASES, ids=CT1D_IDS)  # fmt: skip
def test_conv_transpose1d_matches_torch(case, x_shape, w_shape, stride, padding, op, dilation,
                                        dtype, rng):  # fmt: skip
    x, w, b = _data(rng, x_shape, w_shape, dtype)
    y, dy, grads = _fast(x, w, b, rng, stride, padding, op, dilation, rank=1)
    spec = padding if isinstance(padding, str) else (padding,)
    oracle = _torch_conv_transpose(x, w, b, dy, stride, spec, op, dilation)
    for name, got, want in zip(["y", "dx", "dw", "db"], (y, *grads), oracle, strict=True):
        assert got.dtype == dtype, name
        assert_close(got, want, op=f"conv_transpose1d {name}",
                     check=f"torch-{np.dtype(dtype).name}")  # fmt: skip


def test_the_oracle_used_both_torch_paths(rng):
    """Guard the oracle: the cases exercise torch's own padding/output_padding and the crop."""
    TORCH_PATHS.clear()
    for _, xs, ws, s, p, op, d in CT2D_CASES:
        x, w, b = _data(rng, xs, ws)
        y = ops.conv_transpose2d(x, w, b, s, p, op, d)
        _torch_conv_transpose(x, w, b, np.ones_like(y), s, p, op, d)
    assert TORCH_PATHS == {"padding/output_padding", "full output + F.pad"}


# ------------------------------------------------------------------------ numerical gradients


@pytest.mark.parametrize(
    ("stride", "padding", "op", "dilation"),
    [(2, "valid", None, 1), (2, "same", None, 1), (3, "same", 2, 1),
     ((2, 1), ((1, 0), (0, 2)), (1, 0), 1), (1, "same", None, 2)],
    ids=["S2-valid", "S2-same", "S3-same-op2", "S(2,1)-pads-op1", "S1-same-dil2"],
)  # fmt: skip
def test_conv_transpose2d_gradcheck_all_entries(stride, padding, op, dilation, rng):
    x, w, b = _data(rng, (1, 3, 2, 2), (3, 2, 2, 2))
    y, cache = ops.conv_transpose2d_forward(
        x, w, b, stride=stride, padding=padding, output_padding=op, dilation=dilation
    )
    g = rng.standard_normal(y.shape)
    dx, dw, db = ops.conv_transpose2d_backward(g, cache)

    def f(x, w, b):
        return float(np.sum(ops.conv_transpose2d(x, w, b, stride, padding, op, dilation) * g))

    check_grads(f, {"x": x, "w": w, "b": b}, {"x": dx, "w": dw, "b": db}, op="conv_transpose2d")


@pytest.mark.parametrize(("case", "x_shape", "w_shape", "stride", "padding", "op", "dilation"),
                         CT2D_CASES, ids=CT2D_IDS)  # fmt: skip
def test_conv_transpose2d_gradcheck_directions(case, x_shape, w_shape, stride, padding, op,
                                               dilation, rng):  # fmt: skip
    x, w, b = _data(rng, x_shape, w_shape)
    y, dy, (dx, dw, db) = _fast(x, w, b, rng, stride, padding, op, dilation)

    def f(x, w, b):
        return float(np.sum(ops.conv_transpose2d(x, w, b, stride, padding, op, dilation) * dy))

    check_directions(f, {"x": x, "w": w, "b": b}, {"x": dx, "w": dw, "b": db}, rng,
                     op="conv_transpose2d")  # fmt: skip


@pytest.mark.parametrize(("case", "x_shape", "w_shape", "stride", "padding", "op", "dilation"),
                         CT1D_CASES, ids=CT1D_IDS)  # fmt: skip
def test_conv_transpose1d_gradcheck_all_entries(case, x_shape, w_shape, stride, padding, op,
                                                dilation, rng):  # fmt: skip
    x, w, b = _data(rng, x_shape, w_shape)
    y, dy, (dx, dw, db) = _fast(x, w, b, rng, stride, padding, op, dilation, rank=1)

    def f(x, w, b):
        return float(np.sum(ops.conv_transpose1d(x, w, b, stride, padding, op, dilation) * dy))

    check_grads(f, {"x": x, "w": w, "b": b}, {"x": dx, "w": dw, "b": db}, op="conv_transpose1d")


# ---------------------------------------------------------------------------- dtype and purity


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rank", [2, 1])
def test_dtype_preserved_inputs_untouched_and_need_dx(rank, dtype, rng):
    shapes = ((2, 3, 4, 2), (3, 3, 4, 2)) if rank == 2 else ((2, 5, 2), (3, 4, 2))
    x, w, b = _data(rng, *shapes, dtype)
    name = "conv_transpose2d" if rank == 2 else "conv_transpose1d"
    forward, backward = getattr(ops, f"{name}_forward"), getattr(ops, f"{name}_backward")
    y, cache = assert_unmodified(
        lambda x, w, b: forward(x, w, b, stride=2, padding="same"), x, w, b
    )
    dy = rng.standard_normal(y.shape).astype(dtype)
    grads = assert_unmodified(lambda dy: backward(dy, cache), dy)
    assert [a.dtype for a in (y, *grads)] == [dtype] * 4
    assert [g.shape for g in grads] == [x.shape, w.shape, b.shape]
    dx0, dw0, db0 = backward(dy, cache, need_dx=False)
    assert dx0 is None
    np.testing.assert_array_equal(dw0, grads[1])
    np.testing.assert_array_equal(db0, grads[2])
    y0, no_bias = forward(x, w, stride=2)
    assert backward(np.ones_like(y0), no_bias)[2] is None


# ----------------------------------------------------------------------------------- errors


def test_output_padding_must_be_smaller_than_the_stride():
    with pytest.raises(ValueError, match=re.escape("output_padding (2, 2) must be smaller than "
                                                   "strides (2, 2)")) as info:  # fmt: skip
        ops.conv_transpose2d(np.zeros((1, 3, 3, 1)), np.zeros((3, 3, 1, 1)), stride=2,
                             output_padding=2)  # fmt: skip
    assert "output_padding=(1, 1)" in str(info.value)
    with pytest.raises(ValueError, match=r"^conv_transpose1d: output_padding \(1,\) must be"):
        ops.conv_transpose1d(np.zeros((1, 3, 1)), np.zeros((3, 1, 1)), output_padding=1)
    with pytest.raises(ValueError, match="must be None, an int >= 0"):
        ops.conv_transpose2d(np.zeros((1, 3, 3, 1)), np.zeros((3, 3, 1, 1)), output_padding=-1)


def test_an_empty_output_shows_the_arithmetic():
    with pytest.raises(ValueError, match=re.escape("(2 - 1)*1 + 3 - 3 - 3 = -2 < 1")):
        ops.conv_transpose2d(np.zeros((1, 2, 2, 1)), np.zeros((3, 3, 1, 1)), padding=3)
    with pytest.raises(ValueError, match=re.escape("(1 - 1)*2 + 2 % 2 + 0 = 0 < 1")):
        ops.conv_transpose2d(np.zeros((1, 1, 1, 1)), np.zeros((2, 2, 1, 1)), stride=2,
                             padding="same", output_padding=0)  # fmt: skip


@pytest.mark.parametrize(
    ("x_shape", "w_shape", "b_shape", "message"),
    [
        ((1, 3, 3, 2), (3, 3, 4, 3), (4,), "last axis (D_in = 3) must equal the input depth 2"),
        ((3, 3, 2), (3, 3, 4, 2), (4,), "x must be (N, H, W, D_in)"),
        ((1, 3, 3, 2), (3, 4, 2), (4,), "w must be (Fh, Fw, K_out, D_in)"),
        ((1, 3, 3, 2), (3, 3, 4, 2), (2,), "b must have shape (4,)"),
    ],
)  # fmt: skip
def test_bad_shapes_are_refused(x_shape, w_shape, b_shape, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        ops.conv_transpose2d(np.zeros(x_shape), np.zeros(w_shape), np.zeros(b_shape))
