"""Generated X-versus-O images: shapes, determinism, regions, and that X and O really differ."""

from __future__ import annotations

import numpy as np
import pytest

from slidenet.datasets import xo


def ink_centroids(x: np.ndarray) -> np.ndarray:
    """Intensity-weighted centre (row, col) of each image, ``(N, 2)``."""
    w = x.astype(np.float64)
    w = np.where(w > 0.3 * w.max(axis=(1, 2), keepdims=True), w, 0.0)  # ignore the noise
    rows, cols = np.indices(x.shape[1:])
    total = w.sum(axis=(1, 2))
    return np.stack([(w * rows).sum(axis=(1, 2)) / total, (w * cols).sum(axis=(1, 2)) / total], 1)


def test_shapes_dtypes_and_balance():
    (x_train, y_train), (x_test, y_test) = xo.load_data(n_train=101, n_test=40)
    assert x_train.shape == (101, 28, 28) and x_train.dtype == np.uint8
    assert x_test.shape == (40, 28, 28) and y_test.dtype == np.uint8
    assert np.bincount(y_train).tolist() == [51, 50]
    assert np.bincount(y_test).tolist() == [20, 20]
    assert len(set(y_train[:10].tolist())) == 2  # shuffled


def test_deterministic_given_seed():
    a = xo.load_data(n_train=30, n_test=10, seed=3)
    b = xo.load_data(n_train=30, n_test=10, seed=3)
    c = xo.load_data(n_train=30, n_test=10, seed=4)
    for u, v in zip((*a[0], *a[1]), (*b[0], *b[1]), strict=True):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a[0][0], c[0][0])


def test_test_set_does_not_depend_on_n_train():
    _, test_a = xo.load_data(n_train=10, n_test=20)
    _, test_b = xo.load_data(n_train=50, n_test=20)
    np.testing.assert_array_equal(test_a[0], test_b[0])


@pytest.mark.parametrize("size", [28, 17, 40])
def test_regions_keep_every_inked_pixel_in_their_half(size):
    half = size // 2
    (left, _), (right, _) = xo.load_data(
        n_train=300, n_test=300, size=size, region="left", test_region="right", noise=0.0
    )
    assert left.shape == (300, size, size)
    assert left[:, :, half + size % 2 :].max() == 0 and right[:, :, :half].max() == 0
    assert left.reshape(300, -1).max(axis=1).min() == 255  # every image has a full-ink stroke
    assert right.reshape(300, -1).max(axis=1).min() == 255


def test_positions_vary_across_the_canvas():
    (x, _), _ = xo.load_data(n_train=400, n_test=1, noise=0.0)
    centres = ink_centroids(x)
    assert centres[:, 1].min() < 10 and centres[:, 1].max() > 18  # left to right
    assert centres[:, 0].min() < 10 and centres[:, 0].max() > 18  # top to bottom
    (x_left, _), (x_right, _) = xo.load_data(
        n_train=200, n_test=200, region="left", test_region="right", noise=0
    )
    shift = ink_centroids(x_right)[:, 1].mean() - ink_centroids(x_left)[:, 1].mean()
    assert 10 < shift < 18


def test_x_has_ink_at_its_centre_and_o_does_not():
    (x, y), _ = xo.load_data(n_train=400, n_test=1)
    centres = np.rint(ink_centroids(x)).astype(int)
    at_centre = x[np.arange(len(x)), centres[:, 0], centres[:, 1]]
    predicted = (at_centre > 128).astype(np.uint8)
    assert (predicted == y).mean() > 0.95


def test_sizes_and_strokes_vary():
    (x, y), _ = xo.load_data(n_train=300, n_test=1, noise=0.0)
    ink = (x > 128).sum(axis=(1, 2))
    for label in (0, 1):
        assert ink[y == label].max() > 1.8 * ink[y == label].min()


def test_noise_and_float32():
    (clean, _), _ = xo.load_data(n_train=20, n_test=1, noise=0.0, dtype="float32")
    (noisy, _), _ = xo.load_data(n_train=20, n_test=1, noise=0.1, dtype="float32")
    assert clean.dtype == np.float32 and 0.0 <= noisy.min() and noisy.max() <= 1.0
    background = clean == 0
    assert 0.2 < (noisy[background] > 0).mean() < 0.8  # half the clipped Gaussian is above 0
    assert 0.03 < noisy[background].std() < 0.1


def test_render_accepts_given_labels():
    images = xo.render([1, 1, 0], size=20, noise=0.0, seed=1)
    assert images.shape == (3, 20, 20) and images.dtype == np.float64
    with pytest.raises(ValueError, match="labels must be 0"):
        xo.render([2])


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"region": "middle"}, ValueError, "Unknown region 'middle'"),
        ({"test_region": "lefft"}, ValueError, "Did you mean 'left'"),
        ({"size": 12}, ValueError, "at least 16 pixels"),
        ({"n_train": 0}, ValueError, "n_train must be a positive integer"),
        ({"seed": -1}, ValueError, "seed must be an integer >= 0"),
        ({"noise": -0.1}, ValueError, "noise must be a finite number >= 0"),
        ({"dtype": "float64"}, ValueError, "Unknown dtype 'float64'"),
    ],
)
def test_invalid_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        xo.load_data(**{"n_train": 4, "n_test": 2, **kwargs})


def test_left_region_with_a_symbol_that_fills_its_half_does_not_crash():
    """Regression: seed 2 clamps a radius so that rounding left an empty position range."""
    from slidenet.datasets import xo

    (x_train, _), (x_test, _) = xo.load_data(n_train=600, n_test=400, region="left", seed=2)
    assert x_train.shape[0] == 600 and x_test.shape[0] == 400
    assert np.all(np.isfinite(x_train))
