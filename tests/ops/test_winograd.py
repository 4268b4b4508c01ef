"""Winograd minimal filtering: the same convolution as im2col (loops), torch and finite
differences."""

import logging

import numpy as np
import pytest
import torch.nn.functional as F
from ops_helpers import assert_close, check_directions, from_nchw, from_torch, torch_pad

import slidenet as keras
from slidenet import ops
from slidenet.ops import reference
from slidenet.ops.winograd import winograd_backward, winograd_conv2d, winograd_matrices
from torch_oracle import leaf, to_nchw

# (name, x shape, kernel size, pads): sizes that are and are not multiples of the tile
CASES = [
    ("F3-same-7x9", (2, 7, 9, 3), 3, ((1, 1), (1, 1))),
    ("F3-valid-6x6", (2, 6, 6, 4), 3, ((0, 0), (0, 0))),
    ("F3-asym", (1, 5, 8, 2), 3, ((0, 2), (1, 0))),
    ("F5-same-14x14", (2, 14, 14, 5), 5, ((2, 2), (2, 2))),
    ("F5-valid-9x11", (2, 9, 11, 3), 5, ((0, 0), (0, 0))),
    ("F5-pad4", (1, 3, 4, 2), 5, ((4, 3), (0, 4))),
]
IDS = [c[0] for c in CASES]


@pytest.mark.parametrize(("m", "r"), [(2, 3), (4, 3), (4, 5), (2, 5)])
def test_1d_transforms_compute_a_correlation(m, r, rng):
    at, g, bt = winograd_matrices(m, r)
    assert at.shape == (m, m + r - 1) and g.shape == (m + r - 1, r) and bt.shape == (m + r - 1,) * 2
    d, w = rng.standard_normal(m + r - 1), rng.standard_normal(r)
    want = [d[i : i + r] @ w for i in range(m)]
    np.testing.assert_allclose(at @ ((g @ w) * (bt @ d)), want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("case", "x_shape", "r", "pads"), CASES, ids=IDS)
def test_forward_and_dx_match_the_loops(case, x_shape, r, pads, dtype, rng):
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal((r, r, x_shape[3], 3)).astype(dtype)
    want = reference.conv2d(x, w, padding=pads)
    got = winograd_conv2d(x, w, pads)
    assert got.dtype == dtype
    assert_close(got, want, op=f"winograd {case}", check="loops-y")
    dy = rng.standard_normal(want.shape).astype(dtype)
    _, tiles = winograd_conv2d(x, w, pads, return_tiles=True)
    dx, dw = winograd_backward(dy, tiles, w, pads)
    dx_loops, dw_loops, _ = reference.conv2d_backward(x, w, dy, padding=pads)
    assert_close(dx, dx_loops, op=f"winograd {case}", check="loops-dx")
    assert_close(dw, dw_loops, op=f"winograd {case}", check="loops-dw")
    assert winograd_backward(dy, tiles, w, pads, need_dx=False)[0] is None


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("case", "x_shape", "r", "pads"), CASES, ids=IDS)
def test_ops_with_winograd_match_torch(case, x_shape, r, pads, dtype, rng):
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal((r, r, x_shape[3], 4)).astype(dtype)
    b = rng.standard_normal(4).astype(dtype)
    y, cache = ops.conv2d_forward(x, w, b, padding=pads, algorithm="winograd")
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx, dw, db = ops.conv2d_backward(dy, cache)
    xt, wt, bt = to_nchw(x), leaf(w.transpose(3, 2, 0, 1)), leaf(b)
    yt = F.conv2d(torch_pad(xt, pads), wt, bt)
    (yt * to_nchw(dy, grad=False)).sum().backward()
    dw_t = from_torch(wt.grad).transpose(2, 3, 1, 0)
    want = (from_nchw(yt), from_nchw(xt.grad), dw_t, from_torch(bt.grad))
    for name, got, exp in zip(["y", "dx", "dw", "db"], (y, dx, dw, db), want, strict=True):
        assert got.dtype == dtype
        assert_close(got, exp, op=f"winograd {case}", check=f"torch-{name}")


@pytest.mark.parametrize(("case", "x_shape", "r", "pads"), CASES[::2], ids=IDS[::2])
def test_winograd_gradients_by_finite_differences(case, x_shape, r, pads, rng):
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal((r, r, x_shape[3], 2))
    y, cache = ops.conv2d_forward(x, w, padding=pads, algorithm="winograd")
    dy = rng.standard_normal(y.shape)
    dx, dw, _ = ops.conv2d_backward(dy, cache)

    def loss(x, w):
        return float(np.sum(winograd_conv2d(x, w, pads) * dy))

    check_directions(loss, {"x": x, "w": w}, {"x": dx, "w": dw}, rng, op=f"winograd {case}")


def test_winograd_refuses_what_it_cannot_do_with_a_fix(rng):
    x, w = rng.standard_normal((1, 8, 8, 2)), rng.standard_normal((3, 3, 2, 1))
    with pytest.raises(ValueError, match=r"winograd.*stride 1.*use algorithm='im2col'"):
        ops.conv2d_forward(x, w, stride=2, algorithm="winograd")
    with pytest.raises(ValueError, match=r"algorithm must be one of"):
        ops.conv2d_forward(x, w, algorithm="fft")
    with pytest.raises(ValueError, match=r"Conv2D 'wino_bad'.*square 3x3 or 5x5"):
        keras.Sequential(
            [
                keras.Input((8, 8, 2)),
                keras.layers.Conv2D(2, 4, algorithm="winograd", name="wino_bad"),
            ]
        )


def test_conv2d_layer_chooses_and_logs_its_algorithm(caplog, rng):
    with caplog.at_level(logging.INFO, logger="slidenet"):
        model = keras.Sequential(
            [
                keras.Input((10, 10, 16)),
                keras.layers.Conv2D(16, 3, padding="same", name="deep_conv"),
                keras.layers.Conv2D(16, 3, strides=2, name="strided_conv"),
                keras.layers.Conv2D(4, 3, name="thin_conv"),
            ]
        )
    assert [layer.algorithm for layer in model.layers] == ["winograd", "im2col", "im2col"]
    assert "Conv2D 'deep_conv': algorithm winograd" in caplog.text
    x = rng.standard_normal((3, 10, 10, 16)).astype(np.float32)
    forced = keras.layers.Conv2D(16, 3, padding="same", algorithm="im2col")
    forced.build((10, 10, 16))
    forced.set_weights(model.layers[0].get_weights())
    assert forced.algorithm == "im2col"
    # Winograd and im2col: the same numbers to float32 rounding, forward and backward
    assert_close(model.layers[0](x), forced(x), op="Conv2D winograd", check="layer-y")
    assert_close(
        model.layers[0](x, training=True), forced(x), op="Conv2D winograd", check="layer-train"
    )
    dy = rng.standard_normal((3, 10, 10, 16)).astype(np.float32)
    assert_close(
        model.layers[0].backward(dy), forced.backward(dy), op="Conv2D winograd", check="layer-dx"
    )
    for got, want in zip(model.layers[0].grads, forced.grads, strict=True):
        assert_close(got, want, op="Conv2D winograd", check="layer-grads")
    config = model.layers[0].get_config()
    assert config["algorithm"] == "auto"
    assert keras.layers.Conv2D.from_config(config).algorithm_arg == "auto"
