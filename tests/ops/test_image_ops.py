"""Image ops: resizing (PyTorch oracle), crops, affine warps (a slow per-pixel reference written
here from np.pad's extension modes), their backward passes (adjoints and finite differences),
properties of rotations and translations, and argument errors."""

import math

import numpy as np
import pytest
import torch.nn.functional as F
from ops_helpers import GRADCHECK_TOL

from slidenet.ops import image_ops as io
from torch_oracle import assert_matches, to_nchw, to_numpy

DTYPES = [np.float32, np.float64]


# ----- resizing --------------------------------------------------------------------------------
def test_resize_matrix_golden():
    np.testing.assert_allclose(
        io.resize_matrix(2, 4),
        [[1, 0], [0.75, 0.25], [0.25, 0.75], [0, 1]],
    )
    # downsampling 4 -> 2 averages neighbour pairs; nearest takes floor((o + 0.5) * 2)
    np.testing.assert_allclose(io.resize_matrix(4, 2), [[0.5, 0.5, 0, 0], [0, 0, 0.5, 0.5]])
    np.testing.assert_array_equal(io.resize_matrix(4, 2, "nearest"), [[0, 1, 0, 0], [0, 0, 0, 1]])
    np.testing.assert_array_equal(io.resize_matrix(3, 3), np.eye(3))
    for n_in, n_out in [(5, 3), (3, 7), (1, 4), (6, 1)]:
        for interp in io.INTERPOLATIONS:
            np.testing.assert_allclose(io.resize_matrix(n_in, n_out, interp).sum(1), 1.0)


def torch_resize(x, height, width, interpolation, dy):
    xt = to_nchw(x)
    if interpolation == "bilinear":
        yt = F.interpolate(
            xt, size=(height, width), mode="bilinear", align_corners=False, antialias=False
        )
    else:  # Keras' (TF's, JAX's) half-pixel nearest neighbour is torch's "nearest-exact"
        yt = F.interpolate(xt, size=(height, width), mode="nearest-exact")
    (yt * to_nchw(dy, grad=False)).sum().backward()
    return to_numpy(yt, channels_last=True), to_numpy(xt.grad, channels_last=True)


SIZES = [((4, 5), (8, 10)), ((7, 6), (3, 4)), ((5, 5), (5, 9)), ((6, 3), (1, 7)), ((3, 8), (3, 8))]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("interpolation", io.INTERPOLATIONS)
@pytest.mark.parametrize(("size_in", "size_out"), SIZES, ids=[f"{a}->{b}" for a, b in SIZES])
def test_resize_matches_torch(rng, dtype, interpolation, size_in, size_out):
    x = rng.normal(size=(2, *size_in, 3)).astype(dtype)
    dy = rng.normal(size=(2, *size_out, 3)).astype(dtype)
    want_y, want_dx = torch_resize(x, *size_out, interpolation, dy)
    y, cache = io.resize_forward(x, *size_out, interpolation)
    dx = io.resize_backward(dy, cache)
    assert y.dtype == dx.dtype == dtype
    assert_matches(y, want_y, f"resize {interpolation} forward")
    assert_matches(dx, want_dx, f"resize {interpolation} backward")
    np.testing.assert_array_equal(io.resize(x, *size_out, interpolation), y)


# ----- crops -----------------------------------------------------------------------------------
def test_crop_forward_backward(rng):
    x = rng.normal(size=(2, 5, 6, 2))
    y, cache = io.crop_forward(x, 1, 2, 3, 4)
    np.testing.assert_array_equal(y, x[:, 1:4, 2:6])
    assert not np.shares_memory(y, x)
    dy = rng.normal(size=y.shape)
    dx = io.crop_backward(dy, cache)
    np.testing.assert_array_equal(dx[:, 1:4, 2:6], dy)
    assert dx.sum() == pytest.approx(dy.sum())
    with pytest.raises(ValueError, match="does not fit an image of 5x6"):
        io.crop_forward(x, 3, 0, 3, 2)


@pytest.mark.parametrize(
    ("image", "target", "box"),
    [
        ((4, 8), (2, 2), (0, 2, 4, 4)),
        ((8, 4), (2, 2), (2, 0, 4, 4)),
        ((6, 6), (2, 3), (1, 0, 4, 6)),
        ((5, 7), (5, 7), (0, 0, 5, 7)),
        ((3, 9), (9, 1), (0, 4, 3, 1)),
    ],
)
def test_aspect_crop_box(image, target, box):
    assert io.aspect_crop_box(*image, *target) == box


# ----- affine warps: a slow reference from np.pad's extension modes ---------------------------
PAD_MODES = {"reflect": "symmetric", "wrap": "wrap", "nearest": "edge", "constant": "constant"}


def slow_affine(x, transforms, interpolation, fill_mode, fill_value):
    """Pad each image far beyond any sampled point with np.pad, then sample pixel by pixel."""
    N, H, W, D = x.shape
    pad = 3 * max(H, W)
    kwargs = {"constant_values": fill_value} if fill_mode == "constant" else {}
    padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), PAD_MODES[fill_mode], **kwargs)
    out = np.zeros_like(x, dtype=np.float64)
    for n in range(N):
        a0, a1, a2, b0, b1, b2, c0, c1 = transforms[n]
        for r in range(H):
            for c in range(W):
                k = c0 * c + c1 * r + 1
                sx, sy = (a0 * c + a1 * r + a2) / k, (b0 * c + b1 * r + b2) / k
                if interpolation == "nearest":
                    out[n, r, c] = padded[n, math.floor(sy + 0.5) + pad, math.floor(sx + 0.5) + pad]
                    continue
                y0, x0 = math.floor(sy), math.floor(sx)
                fy, fx = sy - y0, sx - x0
                for dy_, dx_, w in [
                    (0, 0, (1 - fy) * (1 - fx)),
                    (0, 1, (1 - fy) * fx),
                    (1, 0, fy * (1 - fx)),
                    (1, 1, fy * fx),
                ]:
                    out[n, r, c] += w * padded[n, y0 + dy_ + pad, x0 + dx_ + pad]
    return out


def random_transforms(rng, n, H, W, projective=True):
    """Rotations, zooms, shears and shifts mixed, plus a small projective part."""
    angles = rng.uniform(-np.pi, np.pi, n)
    t = io.rotation_transforms(angles, H, W)
    t[:, [0, 4]] *= rng.uniform(0.6, 1.6, (n, 2))
    t[:, [1, 3]] += rng.uniform(-0.3, 0.3, (n, 2))
    t[:, [2, 5]] += rng.uniform(-2.5, 2.5, (n, 2))
    if projective:
        t[:, 6:] = rng.uniform(-0.03, 0.03, (n, 2))
    return t


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("interpolation", io.INTERPOLATIONS)
@pytest.mark.parametrize("fill_mode", io.FILL_MODES)
def test_affine_matches_slow_reference(rng, dtype, interpolation, fill_mode):
    x = rng.normal(size=(3, 5, 6, 2)).astype(dtype)
    t = random_transforms(rng, 3, 5, 6)
    y = io.affine_transform(x, t, interpolation, fill_mode, fill_value=0.7)
    assert y.dtype == dtype
    want = slow_affine(x.astype(np.float64), t, interpolation, fill_mode, 0.7)
    assert_matches(y, want, f"affine {interpolation} {fill_mode}")


@pytest.mark.parametrize("interpolation", io.INTERPOLATIONS)
@pytest.mark.parametrize("fill_mode", io.FILL_MODES)
def test_affine_backward_is_the_adjoint(rng, interpolation, fill_mode):
    """<warp(x), r> = <x, warp_backward(r)>: the backward is the exact transpose (fill 0)."""
    x = rng.normal(size=(2, 4, 5, 3))
    t = random_transforms(rng, 2, 4, 5)
    y, cache = io.affine_transform_forward(x, t, interpolation, fill_mode, 0.0)
    r = rng.normal(size=y.shape)
    dx = io.affine_transform_backward(r, cache)
    assert dx.shape == x.shape and dx.dtype == x.dtype
    assert np.sum(y * r) == pytest.approx(np.sum(x * dx), rel=1e-12)


def test_affine_backward_matches_finite_differences(rng):
    x = rng.normal(size=(1, 4, 4, 2))
    t = random_transforms(rng, 1, 4, 4)
    r = rng.normal(size=x.shape)
    _, cache = io.affine_transform_forward(x, t, "bilinear", "constant", 0.3)
    dx = io.affine_transform_backward(r, cache)
    eps, numeric = 1e-6, np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[idx] += eps
        down[idx] -= eps
        f_up = np.sum(r * io.affine_transform(up, t, "bilinear", "constant", 0.3))
        f_down = np.sum(r * io.affine_transform(down, t, "bilinear", "constant", 0.3))
        numeric[idx] = (f_up - f_down) / (2 * eps)
    assert np.max(np.abs(numeric - dx)) / np.max(np.abs(dx)) < GRADCHECK_TOL


def test_resize_backward_is_the_adjoint(rng):
    x = rng.normal(size=(2, 5, 3, 2))
    y, cache = io.resize_forward(x, 7, 2)
    r = rng.normal(size=y.shape)
    assert np.sum(y * r) == pytest.approx(np.sum(x * io.resize_backward(r, cache)), rel=1e-12)


# ----- properties --------------------------------------------------------------------------------
@pytest.mark.parametrize("fill_mode", io.FILL_MODES)
def test_rotation_by_zero_is_the_identity(rng, fill_mode):
    x = rng.normal(size=(2, 5, 7, 3)).astype(np.float32)
    y = io.affine_transform(x, io.rotation_transforms([0.0, 0.0], 5, 7), fill_mode=fill_mode)
    np.testing.assert_array_equal(y, x)


@pytest.mark.parametrize("shape", [(5, 5), (6, 6), (4, 6)])
def test_four_quarter_turns_return_a_centred_square_image(rng, shape):
    H, W = shape
    s = min(H, W)
    x = np.zeros((1, H, W, 2))
    top, left = (H - s) // 2, (W - s) // 2
    x[:, top : top + s, left : left + s] = rng.normal(size=(1, s, s, 2))
    quarter = io.rotation_transforms([np.pi / 2], H, W)
    y = x
    for turn in range(4):
        y = io.affine_transform(y, quarter, fill_mode="constant")
        if turn == 0:  # counter-clockwise, as np.rot90 turns the square
            np.testing.assert_allclose(
                y[0, top : top + s, left : left + s],
                np.rot90(x[0, top : top + s, left : left + s]),
                atol=1e-12,
            )
    np.testing.assert_allclose(y, x, atol=1e-12)


def test_translation_by_whole_pixels_shifts_exactly(rng):
    x = rng.normal(size=(2, 5, 6, 1)).astype(np.float32)
    t = io.translation_transforms(2, -1)  # 2 right, 1 up
    y = io.affine_transform(x, t, fill_mode="constant", fill_value=9.0)
    want = np.full_like(x, 9.0)
    want[:, :4, 2:] = x[:, 1:, :4]
    np.testing.assert_array_equal(y, want)
    wrapped = io.affine_transform(x, t, fill_mode="wrap")
    np.testing.assert_array_equal(wrapped, np.roll(x, (-1, 2), axis=(1, 2)))
    nearest = io.affine_transform(x, t, interpolation="nearest", fill_mode="nearest")
    np.testing.assert_array_equal(nearest[:, :4, 2:], x[:, 1:, :4])
    np.testing.assert_array_equal(nearest[:, 4], nearest[:, 3])


def test_zoom_by_one_is_the_identity_and_zoom_out_shrinks(rng):
    x = rng.normal(size=(1, 5, 5, 1))
    np.testing.assert_array_equal(io.affine_transform(x, io.zoom_transforms(1.0, 1.0, 5, 5)), x)
    y = io.affine_transform(x, io.zoom_transforms(2.0, 2.0, 5, 5), fill_mode="constant")
    np.testing.assert_array_equal(y[0, 1:4, 1:4, 0], x[0, ::2, ::2, 0])  # every other pixel
    assert np.all(y[0, 0] == 0) and np.all(y[0, :, 4] == 0)


def test_fill_index_modes():
    i = np.arange(-4, 8)
    assert io.fill_index(i, 4, "reflect")[0].tolist() == [3, 2, 1, 0, 0, 1, 2, 3, 3, 2, 1, 0]
    assert io.fill_index(i, 4, "wrap")[0].tolist() == [0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3]
    assert io.fill_index(i, 4, "nearest")[0].tolist() == [0] * 5 + [1, 2] + [3] * 5
    index, valid = io.fill_index(i, 4, "constant")
    assert valid.tolist() == [False] * 4 + [True] * 4 + [False] * 4
    assert io.fill_index(np.array([-2, 1]), 1, "reflect")[0].tolist() == [0, 0]


# ----- errors --------------------------------------------------------------------------------
def test_errors_name_the_allowed_values():
    x = np.zeros((1, 3, 3, 1))
    with pytest.raises(ValueError, match="fill_mode 'mirror'.*'reflect', 'wrap', 'constant'"):
        io.affine_transform(x, io.rotation_transforms([0.1], 3, 3), fill_mode="mirror")
    with pytest.raises(ValueError, match="interpolation 'bicubic'.*'bilinear', 'nearest'"):
        io.resize(x, 2, 2, "bicubic")
    with pytest.raises(ValueError, match=r"one such row per image, shaped \(1, 8\)"):
        io.affine_transform(x, np.zeros((2, 8)))
    with pytest.raises(ValueError, match=r"\(N, H, W, C\)"):
        io.resize(np.zeros((3, 3)), 2, 2)
