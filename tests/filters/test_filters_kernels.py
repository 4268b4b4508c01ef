"""The lecture kernels: values, sums, and what they do to an image."""

import numpy as np
import pytest
import scipy.ndimage as ndi

from slidenet.filters import (
    box,
    convolve2d,
    correlate2d,
    gaussian,
    identity,
    laplacian,
    sharpen,
    shift,
    sobel_x,
    sobel_y,
)


def random_image(shape=(9, 11), seed=0):
    return np.random.default_rng(seed).random(shape)


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 7])
def test_box_is_uniform_and_sums_to_one(size):
    k = box(size)
    assert k.shape == (size, size) and k.dtype == np.float64
    np.testing.assert_allclose(k, 1.0 / size**2, rtol=0, atol=0)
    assert abs(k.sum() - 1.0) < 1e-12


def test_box_blur_is_the_neighbourhood_mean():
    x = random_image()
    y = correlate2d(x, box(3), mode="valid")
    assert y[2, 4] == pytest.approx(x[2:5, 4:7].mean(), abs=1e-12)
    np.testing.assert_allclose(
        correlate2d(x, box(5), boundary="nearest"),
        ndi.uniform_filter(x, size=5, mode="nearest"),
        atol=1e-12,
    )


@pytest.mark.parametrize(
    ("size", "sigma"), [(1, 1.0), (3, 0.5), (5, 1.0), (7, 2.0), (4, 1.0), (9, 1.5)]
)
def test_gaussian_is_normalised_symmetric_and_peaked(size, sigma):
    g = gaussian(size, sigma)
    assert g.shape == (size, size) and g.dtype == np.float64
    assert abs(g.sum() - 1.0) < 1e-12
    np.testing.assert_allclose(g, g.T, atol=0)
    np.testing.assert_allclose(g, g[::-1, ::-1], atol=1e-15)
    c = (size - 1) // 2
    assert g.max() == g[c, c]
    assert (g > 0).all()


def test_gaussian_values_and_scipy_blur():
    g = gaussian(5, 1.0)
    d = np.arange(5) - 2.0
    expected = np.exp(-(d[:, None] ** 2 + d[None, :] ** 2) / 2.0)
    np.testing.assert_allclose(g, expected / expected.sum(), rtol=1e-12)
    # scipy.ndimage.gaussian_filter with truncate=2 uses the same 5-tap normalised kernel per axis
    x = random_image(seed=1)
    np.testing.assert_allclose(
        correlate2d(x, g, boundary="reflect"),
        ndi.gaussian_filter(x, sigma=1.0, truncate=2.0, mode="reflect"),
        atol=1e-12,
    )


def test_identity_returns_the_image():
    x = random_image(shape=(6, 7, 3), seed=2)
    for size in (1, 3, 5):
        for boundary in ("zero", "reflect", "nearest", "wrap"):
            np.testing.assert_array_equal(correlate2d(x, identity(size), boundary=boundary), x)
            np.testing.assert_array_equal(convolve2d(x, identity(size), boundary=boundary), x)
    np.testing.assert_array_equal(correlate2d(x, identity(3), mode="valid"), x[1:-1, 1:-1])


@pytest.mark.parametrize(("dy", "dx"), [(0, 0), (1, 0), (0, 1), (-1, 0), (0, -1), (1, -1), (2, 1)])
def test_shift_moves_a_bright_pixel_by_dy_dx(dy, dx):
    x = np.zeros((7, 8))
    x[3, 4] = 1.0
    moved = correlate2d(x, shift(dy, dx, size=5))
    expected = np.zeros_like(x)
    expected[3 + dy, 4 + dx] = 1.0
    np.testing.assert_array_equal(moved, expected)
    # convolution flips the kernel and so moves the other way
    back = convolve2d(x, shift(dy, dx, size=5))
    expected_back = np.zeros_like(x)
    expected_back[3 - dy, 4 - dx] = 1.0
    np.testing.assert_array_equal(back, expected_back)


def test_shift_formula_and_boundary():
    x = random_image(seed=3)
    y = correlate2d(x, shift(1, -1))  # y[i, j] = x[i - 1, j + 1]
    np.testing.assert_array_equal(y[1:, :-1], x[:-1, 1:])
    np.testing.assert_array_equal(y[0], 0.0)  # moved in from outside: zeros
    np.testing.assert_array_equal(y[:, -1], 0.0)
    wrapped = correlate2d(x, shift(1, -1), boundary="wrap")
    np.testing.assert_array_equal(wrapped, np.roll(x, (1, -1), axis=(0, 1)))


def test_sharpen_keeps_a_constant_image_and_boosts_detail():
    k = sharpen(3)
    np.testing.assert_allclose(k, 2 * identity(3) - box(3), atol=0)
    assert abs(k.sum() - 1.0) < 1e-12
    x = np.full((6, 7), 0.4)
    y = correlate2d(x, k)
    np.testing.assert_allclose(y[1:-1, 1:-1], 0.4, atol=1e-12)  # away from the zero boundary
    assert not np.allclose(y[0, 0], 0.4)  # ...where the zeros outside do show
    np.testing.assert_allclose(correlate2d(x, sharpen(5), boundary="nearest"), 0.4, atol=1e-12)
    # a bright dot gets brighter, its neighbours darker
    d = np.zeros((5, 5))
    d[2, 2] = 1.0
    s = correlate2d(d, k)
    assert s[2, 2] > 1.0 and s[1, 2] < 0.0


def test_sobel_responds_to_ramps_in_its_direction():
    i, j = np.mgrid[0:6, 0:7].astype(float)
    ramp_right = 0.5 * j
    ramp_down = 0.25 * i
    np.testing.assert_allclose(correlate2d(ramp_right, sobel_x(), "valid"), 8 * 0.5, atol=1e-12)
    np.testing.assert_allclose(correlate2d(ramp_right, sobel_y(), "valid"), 0.0, atol=1e-12)
    np.testing.assert_allclose(correlate2d(ramp_down, sobel_y(), "valid"), 8 * 0.25, atol=1e-12)
    np.testing.assert_allclose(correlate2d(ramp_down, sobel_x(), "valid"), 0.0, atol=1e-12)
    np.testing.assert_array_equal(sobel_y(), sobel_x().T)
    x = random_image(seed=4)
    np.testing.assert_allclose(
        correlate2d(x, sobel_x(), boundary="reflect"),
        ndi.sobel(x, axis=1, mode="reflect"),
        atol=1e-12,
    )
    np.testing.assert_allclose(
        correlate2d(x, sobel_y(), boundary="reflect"),
        ndi.sobel(x, axis=0, mode="reflect"),
        atol=1e-12,
    )


def test_laplacian():
    k = laplacian()
    assert k.sum() == 0.0
    i, j = np.mgrid[0:6, 0:7].astype(float)
    np.testing.assert_allclose(correlate2d(i**2 + 3 * j**2, k, "valid"), 2 + 6, atol=1e-12)
    x = random_image(seed=5)
    np.testing.assert_allclose(
        correlate2d(x, k, boundary="reflect"), ndi.laplace(x, mode="reflect"), atol=1e-12
    )


def test_kernels_are_fresh_float64_arrays():
    for k in (box(3), gaussian(3, 1.0), identity(), sharpen(), shift(1, 1), sobel_x(), sobel_y()):
        assert k.dtype == np.float64 and k.shape == (3, 3)
    a = sobel_y()
    a[0, 0] = 99.0
    assert sobel_y()[0, 0] == -1.0 and sobel_x()[0, 0] == -1.0


def test_invalid_sizes():
    with pytest.raises(ValueError, match=r"box: size must be a positive integer, got 0"):
        box(0)
    with pytest.raises(ValueError, match=r"box: size must be a positive integer, got 2.5"):
        box(2.5)
    with pytest.raises(
        ValueError, match=r"identity: size must be odd.*got 4\. Use size=3 or size=5"
    ):
        identity(4)
    with pytest.raises(ValueError, match=r"sharpen: size must be odd"):
        sharpen(2)
    with pytest.raises(ValueError, match=r"shift: size must be odd"):
        shift(0, 0, size=2)
    with pytest.raises(ValueError, match=r"gaussian: size must be a positive integer, got True"):
        gaussian(True, 1.0)


def test_invalid_sigma_and_shift():
    for sigma in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match=r"gaussian: sigma must be a positive, finite"):
            gaussian(3, sigma)
    with pytest.raises(ValueError, match=r"gaussian: sigma must be a positive number"):
        gaussian(3, "1")
    with pytest.raises(ValueError, match=r"shift: dy=2 does not fit a 3x3 kernel.*Use size >= 5"):
        shift(2, 0)
    with pytest.raises(ValueError, match=r"shift: dx=-3 does not fit a 5x5 kernel.*size >= 7"):
        shift(0, -3, size=5)
    with pytest.raises(ValueError, match=r"shift: dx must be an integer"):
        shift(0, 0.5)
