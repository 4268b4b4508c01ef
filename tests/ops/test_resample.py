"""upsample, zero_pad and crop_border on (N, *spatial, D): Keras' examples, fast vs reference
loops, the PyTorch oracle (interpolate, pad, slicing; forward and gradient), exact adjoints,
float64 gradient checks and errors."""

import re

import numpy as np
import pytest
import torch.nn.functional as F
from ops_helpers import (
    assert_close,
    assert_unmodified,
    check_grads,
    from_nchw,
    torch_pad,
)

from slidenet import ops
from slidenet.ops import reference_more as reference
from slidenet.ops.resample import border_pairs
from torch_oracle import to_nchw

# id, x (N, *spatial, D), size, interpolation
UPSAMPLE_CASES = [
    ("1d-s3-nearest", (2, 4, 2), 3, "nearest"),
    ("2d-s2-nearest", (2, 3, 2, 2), 2, "nearest"),
    ("2d-s(1,3)-nearest", (1, 2, 3, 2), (1, 3), "nearest"),
    ("3d-s(2,1,3)-nearest", (1, 2, 2, 3, 2), (2, 1, 3), "nearest"),
    ("2d-s2-bilinear", (2, 3, 4, 2), 2, "bilinear"),
    ("2d-s(3,2)-bilinear", (1, 3, 2, 2), (3, 2), "bilinear"),
    ("2d-s4-bilinear-1px", (1, 1, 2, 1), 4, "bilinear"),
    ("1d-s3-linear", (2, 4, 1), 3, "bilinear"),
    ("3d-s(2,3,2)-trilinear", (1, 2, 3, 2, 1), (2, 3, 2), "bilinear"),
]
UPSAMPLE_IDS = [c[0] for c in UPSAMPLE_CASES]
TORCH_MODES = {1: "linear", 2: "bilinear", 3: "trilinear"}

# id, x (N, *spatial, D), explicit (before, after) pairs per axis
BORDER_CASES = [
    ("1d", (2, 5, 2), ((1, 2),)),
    ("2d", (2, 4, 5, 2), ((1, 0), (2, 1))),
    ("2d-zero-sides", (1, 3, 3, 1), ((0, 0), (0, 2))),
    ("3d", (1, 3, 4, 3, 2), ((1, 1), (0, 2), (1, 0))),
]
BORDER_IDS = [c[0] for c in BORDER_CASES]


def _size(size, axes):
    return (size,) * axes if isinstance(size, int) else tuple(size)


# ------------------------------------------------------------------------ golden (Keras docs)


def test_keras_upsampling2d_example_repeats_columns():
    x = np.arange(12).reshape(2, 2, 1, 3)
    y = ops.upsample(x, (1, 2))
    assert y.shape == (2, 2, 2, 3)
    np.testing.assert_array_equal(y[0, :, :, 0], [[0, 0], [3, 3]])
    np.testing.assert_array_equal(y[1, 1], [[9, 10, 11], [9, 10, 11]])


def test_keras_zeropadding2d_example():
    x = np.arange(4).reshape(1, 1, 2, 2)
    y = ops.zero_pad(x, 1)
    assert y.shape == (1, 3, 4, 2)
    np.testing.assert_array_equal(y[0, 1], [[0, 0], [0, 1], [2, 3], [0, 0]])
    assert y[0, 0].sum() == y[0, 2].sum() == 0


def test_keras_cropping3d_example_shape():
    y = ops.crop_border(np.zeros((2, 28, 28, 10, 3)), (2, 4, 2))
    assert y.shape == (2, 24, 20, 6, 3)


def test_bilinear_uses_half_pixel_centres_and_clamps_the_ends():
    """Factor 2: outputs sit at input positions -0.25, 0.25, 0.75, 1.25 (clamped to 0 and 1)."""
    y = ops.upsample(np.array([0.0, 4.0]).reshape(1, 1, 2, 1), (1, 2), "bilinear")
    np.testing.assert_allclose(y[0, 0, :, 0], [0.0, 1.0, 3.0, 4.0])
    y3 = ops.upsample(np.array([0.0, 3.0]).reshape(1, 2, 1), 3, "bilinear")[0, :, 0]
    np.testing.assert_allclose(y3, [0.0, 0.0, 1.0, 2.0, 3.0, 3.0])


@pytest.mark.parametrize(
    ("spec", "axes", "pairs"),
    [
        (2, 1, ((2, 2),)),
        ((1, 3), 1, ((1, 3),)),
        (1, 2, ((1, 1), (1, 1))),
        ((1, 2), 2, ((1, 1), (2, 2))),
        (((1, 0), (2, 3)), 2, ((1, 0), (2, 3))),
        ([[1, 0], [2, 3]], 2, ((1, 0), (2, 3))),
        ((2, 4, 2), 3, ((2, 2), (4, 4), (2, 2))),
    ],
)
def test_border_specs_follow_keras(spec, axes, pairs):
    assert border_pairs(spec, axes, "padding") == pairs


# ------------------------------------------------------------------------ fast vs reference


@pytest.mark.parametrize(("case", "x_shape", "size", "interpolation"), UPSAMPLE_CASES,
                         ids=UPSAMPLE_IDS)  # fmt: skip
def test_upsample_matches_reference(case, x_shape, size, interpolation, rng):
    x = rng.standard_normal(x_shape)
    y, cache = ops.upsample_forward(x, size, interpolation)
    assert_close(y, reference.upsample(x, size, interpolation), op=f"upsample {interpolation} y",
                 check="ref-f64")  # fmt: skip
    dy = rng.standard_normal(y.shape)
    assert_close(ops.upsample_backward(dy, cache),
                 reference.upsample_backward(x.shape, dy, size, interpolation),
                 op=f"upsample {interpolation} dx", check="ref-f64")  # fmt: skip


@pytest.mark.parametrize(("case", "x_shape", "pairs"), BORDER_CASES, ids=BORDER_IDS)
def test_zero_pad_and_crop_match_reference(case, x_shape, pairs, rng):
    x = rng.standard_normal(x_shape)
    y, pads = ops.zero_pad_forward(x, pairs)
    np.testing.assert_array_equal(y, reference.zero_pad(x, pairs))
    np.testing.assert_array_equal(ops.zero_pad_backward(y, pads), x)  # crop undoes the padding
    c, cache = ops.crop_border_forward(y, pairs)
    np.testing.assert_array_equal(c, reference.crop_border(y, pairs))
    np.testing.assert_array_equal(c, x)
    np.testing.assert_array_equal(ops.crop_border_backward(c, cache), y)  # and padding the crop


# ------------------------------------------------------------------------------- PyTorch oracle


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("case", "x_shape", "size", "interpolation"), UPSAMPLE_CASES,
                         ids=UPSAMPLE_IDS)  # fmt: skip
def test_upsample_matches_torch_interpolate(case, x_shape, size, interpolation, dtype, rng):
    """nearest: torch's 'nearest' with an integer factor; bilinear: torch's (bi/tri)linear with
    align_corners=False, the half-pixel convention of Keras 3 / tf.image.resize."""
    x = rng.standard_normal(x_shape).astype(dtype)
    y, cache = ops.upsample_forward(x, size, interpolation)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = ops.upsample_backward(dy, cache)
    axes = x.ndim - 2
    out = [n * s for n, s in zip(x_shape[1:-1], _size(size, axes), strict=True)]
    xt = to_nchw(x)
    if interpolation == "nearest":
        yt = F.interpolate(xt, size=out, mode="nearest")
    else:
        yt = F.interpolate(xt, size=out, mode=TORCH_MODES[axes], align_corners=False)
    (yt * to_nchw(dy, grad=False)).sum().backward()
    check = f"torch-{np.dtype(dtype).name}"
    assert y.dtype == dx.dtype == dtype
    assert_close(y, from_nchw(yt), op=f"upsample {interpolation} y", check=check)
    assert_close(dx, from_nchw(xt.grad), op=f"upsample {interpolation} dx", check=check)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("case", "x_shape", "pairs"), BORDER_CASES, ids=BORDER_IDS)
def test_zero_pad_and_crop_match_torch(case, x_shape, pairs, dtype, rng):
    x = rng.standard_normal(x_shape).astype(dtype)
    y, pads = ops.zero_pad_forward(x, pairs)
    dy = rng.standard_normal(y.shape).astype(dtype)
    xt = to_nchw(x)
    yt = torch_pad(xt, pairs)
    (yt * to_nchw(dy, grad=False)).sum().backward()
    check = f"torch-{np.dtype(dtype).name}"
    assert_close(y, from_nchw(yt), op="zero_pad y", check=check)
    assert_close(ops.zero_pad_backward(dy, pads), from_nchw(xt.grad), op="zero_pad dx",
                 check=check)  # fmt: skip

    c, cache = ops.crop_border_forward(x, [(0, 0)] * (x.ndim - 3) + [(1, 1)])
    dc = rng.standard_normal(c.shape).astype(dtype)
    xt = to_nchw(x)
    ct = xt.narrow(x.ndim - 1, 1, x.shape[-2] - 2)  # the last spatial axis, channels-first
    (ct * to_nchw(dc, grad=False)).sum().backward()
    assert c.dtype == ops.crop_border_backward(dc, cache).dtype == dtype
    assert_close(c, from_nchw(ct), op="crop_border y", check=check)
    assert_close(ops.crop_border_backward(dc, cache), from_nchw(xt.grad), op="crop_border dx",
                 check=check)  # fmt: skip


# ------------------------------------------------------------------ adjoints and gradients


@pytest.mark.parametrize(("case", "x_shape", "size", "interpolation"), UPSAMPLE_CASES,
                         ids=UPSAMPLE_IDS)  # fmt: skip
def test_upsample_backward_is_the_exact_adjoint_and_passes_gradcheck(
    case, x_shape, size, interpolation, rng
):
    x = rng.standard_normal(x_shape)
    y, cache = ops.upsample_forward(x, size, interpolation)
    g = rng.standard_normal(y.shape)
    dx = ops.upsample_backward(g, cache)
    assert abs(np.sum(g * y) - np.sum(dx * x)) < 1e-12 * max(1.0, np.sum(np.abs(g * y)))

    def f(x):
        return float(np.sum(ops.upsample_forward(x, size, interpolation)[0] * g))

    check_grads(f, {"x": x}, {"x": dx}, op=f"upsample {interpolation}")


@pytest.mark.parametrize(("case", "x_shape", "pairs"), BORDER_CASES, ids=BORDER_IDS)
def test_zero_pad_and_crop_gradcheck(case, x_shape, pairs, rng):
    x = rng.standard_normal(x_shape)
    y, pads = ops.zero_pad_forward(x, pairs)
    g = rng.standard_normal(y.shape)
    check_grads(lambda x: float(np.sum(ops.zero_pad(x, pairs) * g)), {"x": x},
                {"x": ops.zero_pad_backward(g, pads)}, op="zero_pad")  # fmt: skip
    c, cache = ops.crop_border_forward(y, pairs)
    gc = rng.standard_normal(c.shape)
    check_grads(lambda y: float(np.sum(ops.crop_border(y, pairs) * gc)), {"y": y},
                {"y": ops.crop_border_backward(gc, cache)}, op="crop_border")  # fmt: skip


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
def test_dtype_kept_and_inputs_untouched(interpolation, dtype, rng):
    x = rng.standard_normal((2, 3, 2, 2)).astype(dtype)
    y, cache = assert_unmodified(lambda x: ops.upsample_forward(x, 2, interpolation), x)
    dy = np.ones_like(y)
    dx = assert_unmodified(lambda d: ops.upsample_backward(d, cache), dy)
    assert y.dtype == dx.dtype == dtype
    for forward, backward in ((ops.zero_pad_forward, ops.zero_pad_backward),
                              (ops.crop_border_forward, ops.crop_border_backward)):  # fmt: skip
        y, cache = assert_unmodified(lambda x, f=forward: f(x, ((1, 0), (0, 1))), x)
        assert y.dtype == backward(np.ones_like(y), cache).dtype == dtype
    assert ops.upsample([[[1], [2]]], 2).dtype == np.float32  # lists and integers, as conv2d


# ---------------------------------------------------------------------------------- errors


def test_crop_larger_than_the_input_names_the_axis_and_shapes():
    msg = ("crop_border: cropping ((1, 1), (2, 2)) removes 2 + 2 = 4 of the 4 cells of axis 2 of "
           "x (1, 5, 4, 3); crop at most 3 in total.")  # fmt: skip
    with pytest.raises(ValueError, match=re.escape(msg)):
        ops.crop_border(np.zeros((1, 5, 4, 3)), (1, 2))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: ops.zero_pad(np.zeros((1, 3, 3, 1)), (1, 2, 3)), "one entry per spatial axis"),
        (lambda: ops.zero_pad(np.zeros((1, 3, 3, 1)), -1), "values must be ints >= 0"),
        (lambda: ops.zero_pad(np.zeros((1, 3, 3, 1)), ((1, 2, 3), 1)), "cannot read"),
        (lambda: ops.crop_border(np.zeros((1, 3, 3, 1)), 1.5), "one entry per spatial axis"),
        (
            lambda: ops.zero_pad(np.zeros((1, 3, 1)), ((1, 1), (1, 1))),
            re.escape("padding for x (1, 3, 1) needs one entry per spatial axis (1)"),
        ),
        (lambda: ops.upsample(np.zeros((1, 2, 2, 1)), 0), "size must be a positive integer"),
        (lambda: ops.upsample(np.zeros((1, 2, 2, 1)), (2, 2, 2)), "size must be an int or a tuple"),
        (lambda: ops.upsample(np.zeros((1, 2, 2, 1)), 2, "bicubic"), "'nearest' or 'bilinear'"),
        (lambda: ops.upsample(np.zeros((2, 2)), 2), r"x must be \(N, \*spatial, D\)"),
        (lambda: ops.crop_border(np.zeros((2, 2)), 1), r"x must be \(N, \*spatial, D\)"),
    ],
)
def test_bad_arguments_are_refused(call, message):
    with pytest.raises(ValueError, match=message):
        call()
