"""slidenet.explain: the arithmetic as text, kernel specs and the sliding-window frames."""

from __future__ import annotations

import numpy as np
import pytest

from slidenet import filters
from slidenet.applications import mnist_cnn
from slidenet.explain import (
    explain_conv,
    explain_model,
    explain_pool,
    parse_kernel,
    render_frames,
)


def test_conv_lecture_example():
    text = explain_conv((32, 32, 3), filters=10, kernel=5, stride=1, padding=2)
    assert "32x32x10" in text
    assert "(32 - 5 + 2*2)/1 + 1 = 32" in text
    assert "(5*5*3 + 1)*10 = 760" in text
    assert "768,000" in text  # 32*32*10*5*5*3 multiply-adds
    assert "Receptive field: 5x5" in text


def test_conv_that_does_not_tile_shows_arithmetic_and_alternatives():
    text = explain_conv((7, 7, 1), filters=1, kernel=3, stride=3)
    assert "(7 - 3)/3 + 1 = 2.33" in text
    assert "stride 2: (7 - 3)/2 + 1 = 3" in text
    assert "padding 1: (7 - 3 + 2*1)/3 + 1 = 3" in text


def test_conv_that_does_not_fit_suggests_padding():
    text = explain_conv((3, 3, 1), filters=1, kernel=5)
    assert "does not fit" in text and "padding 1" in text


def test_pool_arithmetic():
    text = explain_pool((28, 28, 32), pool_size=2)
    assert "(28 - 2)/2 + 1 = 14" in text and "14x14x32" in text and "Parameters: 0" in text


def test_model_lists_each_layer():
    text = explain_model(mnist_cnn())
    assert "(5*5*1 + 1)*32 = 832" in text
    assert "(5*5*32 + 1)*64 = 51,264" in text
    assert "(28 - 5 + 2*2)/1 + 1 = 28" in text
    assert "(14 - 2)/2 + 1 = 7" in text
    assert "(3136 + 1)*1024 = 3,212,288" in text
    assert "Total params: 3,274,634" in text


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("gaussian:5:1.2", filters.gaussian(5, 1.2)),
        ("box:3", filters.box(3)),
        ("sharpen", filters.sharpen()),
        ("identity", filters.identity()),
        ("shift:0:1", filters.shift(0, 1)),
        ("sobel-x", filters.sobel_x()),
        ("sobel-y", filters.sobel_y()),
        ("laplacian", filters.laplacian()),
    ],
)
def test_parse_kernel_names(spec, expected):
    np.testing.assert_array_equal(parse_kernel(spec), expected)


def test_parse_kernel_file(tmp_path):
    path = tmp_path / "k.txt"
    path.write_text("1 2 3\n4 5 6\n")
    np.testing.assert_array_equal(parse_kernel(str(path)), [[1, 2, 3], [4, 5, 6]])
    bad = tmp_path / "bad.txt"
    bad.write_text("1 2\n3\n")
    with pytest.raises(ValueError, match="cannot read kernel file"):
        parse_kernel(str(bad))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("gausian:5:1", "Did you mean 'gaussian'"),
        ("box", "expected box:SIZE"),
        ("box:x", "with numbers"),
        ("gaussian:5:-1", "sigma"),
        ("missing.txt", "does not exist"),
    ],
)
def test_parse_kernel_errors(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_kernel(spec)


def _red_box(frame):
    a = np.asarray(frame.convert("RGB")).astype(int)
    ys, xs = np.nonzero((a[..., 0] > 200) & (a[..., 1] < 60) & (a[..., 2] < 60))
    return xs.min(), ys.min(), xs.max(), ys.max()


def test_render_frames_outline_first_window_and_bounded_count():
    pytest.importorskip("PIL")
    rng = np.random.default_rng(0)
    frames = render_frames(rng.random((12, 10)), "box:3", max_frames=20, cell=8)
    assert 1 < len(frames) <= 20
    assert len({f.size for f in frames}) == 1
    x0, y0, x1, y1 = _red_box(frames[0])
    assert x1 - x0 == 3 * 8 + 1 and y1 - y0 == 3 * 8 + 1  # a 3x3 window of 8-pixel cells
    lx0, ly0, _, _ = _red_box(frames[-1])
    assert lx0 == x0 + (10 - 3) * 8 and ly0 == y0 + (12 - 3) * 8  # the last is bottom-right


def test_render_frames_downscales_big_images():
    pytest.importorskip("PIL")
    frames = render_frames(np.zeros((400, 200, 3)), "identity", max_frames=3, max_size=20, cell=4)
    assert len(frames) == 3
    x0, _, x1, _ = _red_box(frames[0])
    assert x1 - x0 == 3 * 4 + 1
