"""Generated keyword signals: shapes, determinism, placement, and that the keyword is detectable."""

from __future__ import annotations

import numpy as np
import pytest

from slidenet.datasets import keyword

K = len(keyword.KEYWORD)


def normalized_xcorr(x: np.ndarray) -> np.ndarray:
    """Cosine similarity of every window with KEYWORD, ``(N, length - K + 1)``."""
    windows = np.lib.stride_tricks.sliding_window_view(x[:, :, 0].astype(np.float64), K, axis=1)
    k = keyword.KEYWORD.astype(np.float64)
    return (windows @ k) / (np.linalg.norm(windows, axis=2) * np.linalg.norm(k) + 1e-12)


def test_keyword_pattern():
    assert keyword.KEYWORD.shape == (12,) and keyword.KEYWORD.dtype == np.float32
    assert np.abs(keyword.KEYWORD).max() == 1.0
    assert not keyword.KEYWORD.flags.writeable
    # a chirp: more zero crossings in the second half than in the first
    signs = np.signbit(keyword.KEYWORD)
    assert (signs[6:] != signs[5:-1]).sum() > (signs[1:6] != signs[:5]).sum()


def test_shapes_dtypes_and_balance():
    (x_train, y_train), (x_test, y_test) = keyword.load_data(n_train=51, n_test=20, length=100)
    assert x_train.shape == (51, 100, 1) and x_train.dtype == np.float32
    assert x_test.shape == (20, 100, 1) and y_test.dtype == np.uint8
    assert np.bincount(y_train).tolist() == [26, 25]
    assert np.bincount(y_test).tolist() == [10, 10]


def test_deterministic_given_seed():
    a = keyword.load_data(n_train=30, n_test=10, seed=5)
    b = keyword.load_data(n_train=30, n_test=10, seed=5)
    c = keyword.load_data(n_train=30, n_test=10, seed=6)
    for u, v in zip((*a[0], *a[1]), (*b[0], *b[1]), strict=True):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a[0][0], c[0][0])
    _, test_small = keyword.load_data(n_train=5, n_test=10, seed=5)
    np.testing.assert_array_equal(test_small[0], a[1][0])  # test set independent of n_train


@pytest.mark.parametrize(
    ("region", "lo", "hi"), [("any", 0, 128), ("first_half", 0, 64), ("second_half", 64, 128)]
)
def test_keyword_alone_lies_in_its_region(region, lo, hi):
    (x, y, p), _ = keyword.load_data(
        n_train=200,
        n_test=1,
        region=region,
        noise=0.0,
        n_distractors=(0, 0),
        return_positions=True,
    )
    assert (p[y == 0] == -1).all() and (x[y == 0] == 0).all()
    starts = p[y == 1]
    assert starts.min() >= lo and starts.max() + K <= hi
    assert starts.max() - starts.min() > (hi - lo) // 2  # positions spread over the region
    for signal, start in zip(x[y == 1, :, 0], starts, strict=True):
        inked = np.flatnonzero(signal)
        assert inked.min() >= start and inked.max() < start + K
        amplitude = signal[start + 6] / keyword.KEYWORD[6]
        np.testing.assert_allclose(
            signal[start : start + K], amplitude * keyword.KEYWORD, rtol=1e-6
        )
        assert 0.8 <= amplitude <= 1.2


def test_distractors_never_touch_the_keyword():
    (x, y, p), _ = keyword.load_data(
        n_train=300, n_test=1, noise=0.0, n_distractors=(3, 3), return_positions=True
    )
    for signal, start in zip(x[y == 1, :, 0], p[y == 1], strict=True):
        window = signal[start : start + K]
        amplitude = window[6] / keyword.KEYWORD[6]
        np.testing.assert_allclose(window, amplitude * keyword.KEYWORD, rtol=1e-5, atol=1e-7)
        assert signal[max(0, start - 1)] == 0 or start == 0  # a clear sample before it
    assert (np.abs(x[y == 0]).max(axis=(1, 2)) > 0.3).all()  # negatives hold distractors


def test_keyword_is_detectable_by_template_matching():
    (x, y, p), (x_test, y_test, p_test) = keyword.load_data(
        n_train=400, n_test=200, return_positions=True
    )
    score = normalized_xcorr(x)
    threshold = 0.5 * (np.median(score.max(1)[y == 1]) + np.median(score.max(1)[y == 0]))
    test_score = normalized_xcorr(x_test)
    assert ((test_score.max(1) > threshold) == y_test).mean() > 0.95
    found = test_score.argmax(1)[y_test == 1]
    assert (found == p_test[y_test == 1]).mean() > 0.95  # and located where the labels say


def test_region_split_for_train_and_test():
    (_, y, p), (_, y_test, p_test) = keyword.load_data(
        n_train=100,
        n_test=100,
        length=64,
        region="first_half",
        test_region="second_half",
        return_positions=True,
    )
    assert p[y == 1].max() + K <= 32 and p_test[y_test == 1].min() >= 32


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"region": "middle"}, "Unknown region 'middle'"),
        ({"test_region": "first"}, "Unknown region 'first'"),
        ({"length": 40}, "length must be at least 64"),
        ({"n_test": 0}, "n_test must be a positive integer"),
        ({"seed": 1.5}, "seed must be an integer >= 0"),
        ({"noise": float("nan")}, "noise must be a finite number"),
        ({"n_distractors": (3, 1)}, r"n_distractors must be \(low, high\)"),
    ],
)
def test_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        keyword.load_data(**{"n_train": 4, "n_test": 2, **kwargs})
