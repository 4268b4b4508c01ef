"""correlate2d, convolve2d, correlate1d, convolve1d against scipy (the oracle); lecture examples."""

import numpy as np
import pytest
import scipy.ndimage as ndi
import scipy.signal as sps

from slidenet.filters import convolve1d, convolve2d, correlate1d, correlate2d

MODES = ("valid", "same", "full")
# our boundary -> (scipy.ndimage mode, scipy.signal boundary or None when scipy.signal lacks it)
BOUNDARIES = {
    "zero": ("constant", "fill"),
    "reflect": ("reflect", "symm"),
    "nearest": ("nearest", None),
    "wrap": ("wrap", "wrap"),
}
# odd, even, rectangular, a row, a column, and kernels larger than the 4x5 image
KERNEL_SHAPES = [(3, 3), (1, 1), (2, 2), (4, 4), (3, 2), (2, 5), (1, 4), (5, 1), (6, 7), (4, 9)]
IMAGE_SHAPES = [(4, 5), (9, 8)]


def rng_arrays(image_shape, kernel_shape, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(image_shape).astype(dtype)
    k = rng.standard_normal(kernel_shape).astype(dtype)
    return x, k


def fits(image_shape, kernel_shape):
    return all(f <= n for f, n in zip(kernel_shape, image_shape, strict=False))


def ndi_origin(kernel_shape):
    """scipy.ndimage anchors at F // 2, ours (scipy.signal's) at (F - 1) // 2: -1 on even axes."""
    return [-1 if f % 2 == 0 else 0 for f in kernel_shape]


# ------------------------------------------------------------------------ scipy.signal, all modes


# mode "valid" with a kernel larger than the image is an error (tested below), not a case here
SIGNAL_CASES = [
    (kernel_shape, image_shape, mode)
    for kernel_shape in KERNEL_SHAPES
    for image_shape in IMAGE_SHAPES
    for mode in MODES
    if mode != "valid" or fits(image_shape, kernel_shape)
]


@pytest.mark.parametrize("boundary", ["zero", "reflect", "wrap"])
@pytest.mark.parametrize(("kernel_shape", "image_shape", "mode"), SIGNAL_CASES)
def test_matches_scipy_signal(kernel_shape, image_shape, mode, boundary):
    x, k = rng_arrays(image_shape, kernel_shape)
    sig = BOUNDARIES[boundary][1]
    want_corr = sps.correlate2d(x, k, mode=mode, boundary=sig)
    want_conv = sps.convolve2d(x, k, mode=mode, boundary=sig)
    got_corr = correlate2d(x, k, mode=mode, boundary=boundary)
    got_conv = convolve2d(x, k, mode=mode, boundary=boundary)
    assert got_corr.shape == want_corr.shape and got_conv.shape == want_conv.shape
    np.testing.assert_allclose(got_corr, want_corr, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got_conv, want_conv, rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------ scipy.ndimage, mode "same"


@pytest.mark.parametrize("boundary", list(BOUNDARIES))
@pytest.mark.parametrize("image_shape", IMAGE_SHAPES)
@pytest.mark.parametrize("kernel_shape", KERNEL_SHAPES)
def test_same_matches_scipy_ndimage(kernel_shape, image_shape, boundary):
    x, k = rng_arrays(image_shape, kernel_shape, seed=1)
    nd_mode = BOUNDARIES[boundary][0]
    origin = ndi_origin(kernel_shape)
    want_corr = ndi.correlate(x, k, mode=nd_mode, cval=0.0, origin=origin)
    want_conv = ndi.convolve(x, k, mode=nd_mode, cval=0.0, origin=origin)
    np.testing.assert_allclose(
        correlate2d(x, k, "same", boundary), want_corr, rtol=1e-12, atol=1e-12
    )
    np.testing.assert_allclose(
        convolve2d(x, k, "same", boundary), want_conv, rtol=1e-12, atol=1e-12
    )


@pytest.mark.parametrize("boundary", list(BOUNDARIES))
def test_odd_kernel_same_equals_ndimage_default_origin(boundary):
    """For odd kernels no origin is needed: plain scipy.ndimage.correlate/convolve."""
    x, k = rng_arrays((8, 7), (3, 5), seed=2)
    nd_mode = BOUNDARIES[boundary][0]
    np.testing.assert_allclose(
        correlate2d(x, k, boundary=boundary), ndi.correlate(x, k, mode=nd_mode), atol=1e-12
    )
    np.testing.assert_allclose(
        convolve2d(x, k, boundary=boundary), ndi.convolve(x, k, mode=nd_mode), atol=1e-12
    )


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("boundary", list(BOUNDARIES))
def test_channels_are_filtered_separately(mode, boundary):
    x, k = rng_arrays((6, 7, 3), (3, 2), seed=3)
    got = correlate2d(x, k, mode, boundary)
    got_conv = convolve2d(x, k, mode, boundary)
    for c in range(3):
        np.testing.assert_array_equal(got[:, :, c], correlate2d(x[:, :, c], k, mode, boundary))
        np.testing.assert_array_equal(got_conv[:, :, c], convolve2d(x[:, :, c], k, mode, boundary))
    if mode == "same":
        nd_mode = BOUNDARIES[boundary][0]
        want = ndi.correlate(x, k[:, :, None], mode=nd_mode, origin=[*ndi_origin(k.shape), 0])
        np.testing.assert_allclose(got, want, atol=1e-12)


@pytest.mark.parametrize("mode", MODES)
def test_float32_stays_float32_and_matches_float64(mode):
    x, k = rng_arrays((12, 10, 2), (5, 4), seed=4, dtype=np.float32)
    for fn, oracle in ((correlate2d, sps.correlate2d), (convolve2d, sps.convolve2d)):
        got = fn(x, k, mode=mode)
        assert got.dtype == np.float32
        for c in range(2):
            want = oracle(x[:, :, c].astype(np.float64), k.astype(np.float64), mode=mode)
            np.testing.assert_allclose(got[:, :, c], want, rtol=1e-5, atol=1e-5)


def test_float64_stays_float64_even_with_float32_kernel():
    x, k = rng_arrays((5, 5), (3, 3), seed=5)
    assert correlate2d(x, k.astype(np.float32)).dtype == np.float64
    assert correlate1d(x[0], k[0].astype(np.float32)).dtype == np.float64


@pytest.mark.parametrize("dtype", [np.uint8, np.int64, np.bool_])
def test_integer_and_bool_images_compute_in_float32(dtype):
    x = (np.arange(30).reshape(5, 6) % 7 > 2) if dtype is np.bool_ else np.arange(30).reshape(5, 6)
    x = x.astype(dtype)
    k = np.array([[1.0, 2.0], [0.5, -1.0]])
    got = correlate2d(x, k, mode="full")
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, sps.correlate2d(x.astype(np.float64), k, "full"), atol=1e-5)
    assert correlate1d(x[0], k[0]).dtype == np.float32


def test_float16_keeps_its_dtype():
    x = np.linspace(0, 1, 20, dtype=np.float16).reshape(4, 5)
    got = correlate2d(x, np.ones((3, 3)) / 9)
    assert got.dtype == np.float16
    want = ndi.correlate(x.astype(np.float64), np.ones((3, 3)) / 9, mode="constant")
    np.testing.assert_allclose(got.astype(np.float64), want, atol=2e-3)


def test_inputs_are_not_modified():
    x, k = rng_arrays((6, 6), (3, 3), seed=6)
    x0, k0 = x.copy(), k.copy()
    convolve2d(x, k, mode="full", boundary="reflect")
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(k, k0)


# --------------------------------------------------------------------------------------- 1D


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("F", [1, 2, 3, 4, 5])
def test_1d_matches_numpy_and_scipy_signal(F, mode):
    s, k = rng_arrays((11,), (F,), seed=7)
    # the column case of the 2D definition, in every mode and for every kernel
    want = sps.correlate2d(s[:, None], k[:, None], mode=mode)[:, 0]
    np.testing.assert_allclose(correlate1d(s, k, mode), want, rtol=1e-12, atol=1e-12)
    # numpy.convolve agrees in every mode; numpy.correlate anchors even kernels at F // 2
    np.testing.assert_allclose(convolve1d(s, k, mode), np.convolve(s, k, mode), atol=1e-12)
    if F % 2 == 1 or mode != "same":
        np.testing.assert_allclose(correlate1d(s, k, mode), np.correlate(s, k, mode), atol=1e-12)


def test_1d_even_kernel_same_is_numpy_correlate_shifted_by_one():
    """Documented convention: numpy.correlate(..., 'same') is one sample later for even kernels."""
    s, k = rng_arrays((10,), (4,), seed=8)
    ours = correlate1d(s, k, "same")
    theirs = np.correlate(s, k, "same")
    np.testing.assert_allclose(ours[:-1], theirs[1:], atol=1e-12)
    assert not np.allclose(ours, theirs)


@pytest.mark.parametrize("boundary", list(BOUNDARIES))
@pytest.mark.parametrize("F", [1, 2, 3, 4, 7, 14])
def test_1d_same_matches_ndimage(F, boundary):
    s, k = rng_arrays((9, 3), (F,), seed=9)  # (L, C): filtered along L, per channel
    nd_mode = BOUNDARIES[boundary][0]
    origin = -1 if F % 2 == 0 else 0
    want_corr = ndi.correlate1d(s, k, axis=0, mode=nd_mode, origin=origin)
    want_conv = ndi.convolve1d(s, k, axis=0, mode=nd_mode, origin=origin)
    np.testing.assert_allclose(correlate1d(s, k, "same", boundary), want_corr, atol=1e-12)
    np.testing.assert_allclose(convolve1d(s, k, "same", boundary), want_conv, atol=1e-12)
    np.testing.assert_allclose(
        correlate1d(s[:, 1], k, "same", boundary), want_corr[:, 1], atol=1e-12
    )


def test_1d_float32_preserved():
    s, k = rng_arrays((50, 2), (5,), seed=10, dtype=np.float32)
    got = convolve1d(s, k, "full")
    assert got.dtype == np.float32 and got.shape == (54, 2)
    want = np.convolve(s[:, 0].astype(np.float64), k.astype(np.float64), "full")
    np.testing.assert_allclose(got[:, 0], want, rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------------- lecture examples


def test_moving_average_of_1_to_5():
    np.testing.assert_allclose(correlate1d([1, 2, 3, 4, 5], np.ones(3) / 3, "valid"), [2, 3, 4])
    y = correlate1d(np.array([1.0, 2, 3, 4, 5]), np.ones(3) / 3, "same")
    np.testing.assert_allclose(y, [1, 2, 3, 4, 3])  # zero boundary pulls the ends down


def test_convolution_is_correlation_with_flipped_kernel_and_they_differ():
    x = np.zeros((5, 5))
    x[2, 2] = 1.0
    k = np.arange(1.0, 10.0).reshape(3, 3)  # not symmetric
    corr, conv = correlate2d(x, k), convolve2d(x, k)
    np.testing.assert_array_equal(conv[1:4, 1:4], k)  # an impulse reproduces the kernel ...
    np.testing.assert_array_equal(corr[1:4, 1:4], k[::-1, ::-1])  # ... correlation flips it
    assert not np.array_equal(corr, conv)
    np.testing.assert_array_equal(conv, correlate2d(x, k[::-1, ::-1]))


def test_even_kernel_same_mode_anchor_convention():
    """Both functions anchor the kernel element (F-1)//2 over the output pixel (scipy.signal)."""
    x = np.zeros((5, 6))
    x[2, 3] = 1.0
    k = np.array([[1.0, 2.0], [3.0, 4.0]])
    corr = correlate2d(x, k)
    conv = convolve2d(x, k)
    assert corr[2, 3] == k[0, 0]  # y[i, j] = k[0, 0] x[i, j] + k[0, 1] x[i, j + 1] + ...
    assert corr[1, 2] == k[1, 1]
    assert conv[2, 3] == k[0, 0]  # y[i, j] = k[0, 0] x[i, j] + k[0, 1] x[i, j - 1] + ...
    assert conv[3, 4] == k[1, 1]
    # so conv("same") is correlate(flipped, "same") moved one pixel down and right
    np.testing.assert_array_equal(conv[1:, 1:], correlate2d(x, k[::-1, ::-1])[:-1, :-1])


def test_output_shapes():
    x = np.ones((7, 9, 2))
    k = np.ones((3, 4))
    assert correlate2d(x, k, "valid").shape == (5, 6, 2)
    assert correlate2d(x, k, "same").shape == (7, 9, 2)
    assert convolve2d(x, k, "full").shape == (9, 12, 2)
    assert correlate1d(np.ones(7), np.ones(3), "full").shape == (9,)


def test_ops_conv2d_single_channel_equals_correlate2d_valid():
    """The CNN layer's 'convolution' is correlation: slidenet.ops.conv2d == correlate2d(valid)."""
    from slidenet import ops

    x, k = rng_arrays((9, 8), (3, 4), seed=11)
    y = ops.conv2d(x[None, :, :, None], k[:, :, None, None])
    assert y.shape == (1, 7, 5, 1)
    np.testing.assert_allclose(y[0, :, :, 0], correlate2d(x, k, "valid"), rtol=1e-12, atol=1e-12)


# -------------------------------------------------------------------------------------- errors


def test_kernel_larger_than_image_in_valid_mode():
    with pytest.raises(ValueError, match=r"correlate2d: kernel 5x3 does not fit image 4x6.*'same'"):
        correlate2d(np.ones((4, 6)), np.ones((5, 3)), mode="valid")
    with pytest.raises(ValueError, match=r"convolve1d: kernel of length 5 does not fit signal of"):
        convolve1d(np.ones(3), np.ones(5), mode="valid")


def test_wrong_ranks():
    with pytest.raises(ValueError, match=r"correlate2d: kernel must have shape \(Fh, Fw\).*\(3,\)"):
        correlate2d(np.ones((4, 4)), np.ones(3))
    with pytest.raises(ValueError, match=r"ops.conv2d"):
        convolve2d(np.ones((4, 4)), np.ones((3, 3, 1, 1)))
    with pytest.raises(ValueError, match=r"correlate2d: image must have shape \(H, W\) or"):
        correlate2d(np.ones(4), np.ones((3, 3)))
    with pytest.raises(ValueError, match=r"batch"):
        correlate2d(np.ones((2, 4, 4, 1)), np.ones((3, 3)))
    with pytest.raises(ValueError, match=r"correlate1d: kernel must have shape \(F,\)"):
        correlate1d(np.ones(4), np.ones((3, 3)))
    with pytest.raises(ValueError, match=r"convolve1d: signal must have shape \(L,\) or \(L, C\)"):
        convolve1d(np.ones((4, 4, 4)), np.ones(3))


def test_unknown_mode_and_boundary_suggest_the_fix():
    with pytest.raises(ValueError, match=r"correlate2d: Unknown mode 'sme'\. Did you mean 'same'"):
        correlate2d(np.ones((4, 4)), np.ones((3, 3)), mode="sme")
    with pytest.raises(ValueError, match=r"unknown boundary 'wrapp'\. Did you mean 'wrap'"):
        convolve2d(np.ones((4, 4)), np.ones((3, 3)), boundary="wrapp")
    with pytest.raises(ValueError, match=r"'fill' what slidenet calls 'zero'"):
        correlate1d(np.ones(4), np.ones(3), boundary="fill")
    with pytest.raises(ValueError, match=r"Valid boundaries: 'nearest', 'reflect', 'wrap', 'zero'"):
        correlate1d(np.ones(4), np.ones(3), boundary=None)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_are_refused(bad):
    x = np.ones((4, 4))
    x[1, 2] = bad
    with pytest.raises(ValueError, match=r"correlate2d: image contains 1 NaN or Inf"):
        correlate2d(x, np.ones((3, 3)))
    with pytest.raises(ValueError, match=r"convolve1d: kernel contains 1 NaN or Inf"):
        convolve1d(np.ones(5), np.array([1.0, bad]))


def test_empty_and_non_numeric_inputs():
    with pytest.raises(ValueError, match=r"image is empty"):
        correlate2d(np.ones((0, 4)), np.ones((1, 1)))
    with pytest.raises(ValueError, match=r"kernel is empty"):
        correlate2d(np.ones((3, 4)), np.ones((0, 1)))
    with pytest.raises(TypeError, match=r"image has dtype complex128"):
        correlate2d(np.ones((3, 4), dtype=complex), np.ones((1, 1)))
    with pytest.raises(TypeError, match=r"kernel has dtype <U1"):
        correlate1d(np.ones(3), np.array(["a"]))
