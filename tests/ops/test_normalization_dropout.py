"""Batch normalisation (training and inference) and inverted dropout."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from ops_helpers import (
    assert_close,
    assert_unmodified,
    check_directions,
    check_grads,
    from_nchw,
    from_torch,
)

from slidenet import ops
from slidenet.ops import reference
from torch_oracle import leaf, to_nchw

EPS_BN = 1e-3
SHAPES = [(2, 3, 4, 3), (6, 4), (2, 5, 3)]
SHAPE_IDS = ["NHWC", "ND", "NLD"]


def _bn_data(rng, shape, dtype=np.float64):
    x = (rng.standard_normal(shape) * 2 + 1).astype(dtype)
    gamma = rng.uniform(0.5, 1.5, shape[-1]).astype(dtype)
    beta = rng.standard_normal(shape[-1]).astype(dtype)
    return x, gamma, beta


# ------------------------------------------------------------------------------------- golden


def test_batchnorm_standardises_each_channel(rng):
    x = rng.standard_normal((4, 3, 3, 2)) * np.array([1.0, 10.0]) + np.array([5.0, -3.0])
    y, (mean, var), _ = ops.batchnorm_forward(x, np.ones(2), np.zeros(2), eps=0.0)
    np.testing.assert_allclose(y.mean(axis=(0, 1, 2)), 0.0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=(0, 1, 2)), 1.0, rtol=1e-12)
    np.testing.assert_allclose(mean, x.mean(axis=(0, 1, 2)), rtol=1e-12)
    np.testing.assert_allclose(var, x.var(axis=(0, 1, 2)), rtol=1e-12)  # biased: divides by m
    y2, _, _ = ops.batchnorm_forward(x, np.array([2.0, 3.0]), np.array([1.0, -1.0]), eps=0.0)
    np.testing.assert_allclose(y2, y * np.array([2.0, 3.0]) + np.array([1.0, -1.0]), rtol=1e-12)


def test_batchnorm_inference_uses_the_given_statistics(rng):
    x, gamma, beta = _bn_data(rng, (3, 4, 2))
    mean, var = np.array([0.5, -1.0]), np.array([2.0, 0.25])
    y = ops.batchnorm_inference(x, gamma, beta, mean, var, eps=EPS_BN)
    assert_close(y, gamma * (x - mean) / np.sqrt(var + EPS_BN) + beta, op="batchnorm_inference",
                 check="formula-f64")  # fmt: skip
    # inference with the batch's own statistics is the training-mode forward
    y_train, (m, v), _ = ops.batchnorm_forward(x, gamma, beta, eps=EPS_BN)
    assert_close(ops.batchnorm_inference(x, gamma, beta, m, v, eps=EPS_BN), y_train,
                 op="batchnorm_inference", check="formula-f64")  # fmt: skip


# ------------------------------------------------------------------- fast path vs reference loops


@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
def test_batchnorm_matches_reference(shape, rng):
    x, gamma, beta = _bn_data(rng, shape)
    y, (mean, var), cache = ops.batchnorm_forward(x, gamma, beta, eps=EPS_BN)
    ref_y, ref_mean, ref_var = reference.batchnorm(x, gamma, beta, eps=EPS_BN)
    dy = rng.standard_normal(shape)
    fast = (y, mean, var, *ops.batchnorm_backward(dy, cache))
    ref = (ref_y, ref_mean, ref_var, *reference.batchnorm_backward(x, gamma, dy, eps=EPS_BN))
    for got, want in zip(fast, ref, strict=True):
        assert_close(got, want, op="batchnorm", check="ref-f64")


# ------------------------------------------------------------------------------- PyTorch oracle


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
def test_batchnorm_training_matches_torch(shape, dtype, rng):
    x, gamma, beta = _bn_data(rng, shape, dtype)
    y, (mean, var), cache = ops.batchnorm_forward(x, gamma, beta, eps=EPS_BN)
    dy = rng.standard_normal(shape).astype(dtype)
    dx, dgamma, dbeta = ops.batchnorm_backward(dy, cache)
    xt, gt, bt = to_nchw(x), leaf(gamma), leaf(beta)
    running_mean = torch.zeros(shape[-1], dtype=xt.dtype)
    running_var = torch.ones(shape[-1], dtype=xt.dtype)
    yt = F.batch_norm(
        xt, running_mean, running_var, gt, bt, training=True, momentum=1.0, eps=EPS_BN
    )
    (yt * to_nchw(dy, grad=False)).sum().backward()
    check = f"torch-{np.dtype(dtype).name}"
    oracle = {
        "y": from_nchw(yt),
        "dx": from_nchw(xt.grad),
        "dgamma": from_torch(gt.grad),
        "dbeta": from_torch(bt.grad),
    }
    for name, got in zip(oracle, (y, dx, dgamma, dbeta), strict=True):
        assert got.dtype == dtype, name
        assert_close(got, oracle[name], op=f"batchnorm {name}", check=check)
    # slidenet returns the batch's biased variance; torch's running_var (momentum 1) is unbiased
    m = x.size // shape[-1]
    assert_close(mean, running_mean, op="batchnorm mean", check=check)
    assert_close(var * m / (m - 1), running_var, op="batchnorm var", check=check)
    assert_close(var, x.astype(np.float64).var(axis=tuple(range(x.ndim - 1))), op="batchnorm var",
                 check=check)  # fmt: skip
    assert mean.dtype == var.dtype == dtype


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batchnorm_inference_matches_torch(dtype, rng):
    x, gamma, beta = _bn_data(rng, (2, 3, 3, 4), dtype)
    mean, var = rng.standard_normal(4).astype(dtype), rng.uniform(0.5, 2, 4).astype(dtype)
    y = ops.batchnorm_inference(x, gamma, beta, mean, var, eps=EPS_BN)
    stats = [leaf(a, grad=False) for a in (mean, var, gamma, beta)]
    yt = F.batch_norm(to_nchw(x, grad=False), *stats, training=False, eps=EPS_BN)
    assert y.dtype == dtype
    assert_close(
        y, from_nchw(yt), op="batchnorm_inference y", check=f"torch-{np.dtype(dtype).name}"
    )


# ------------------------------------------------------------------------ numerical gradients


def _bn_objective(g):
    def f(x, gamma, beta):
        return float(np.sum(ops.batchnorm_forward(x, gamma, beta, eps=EPS_BN)[0] * g))

    return f


@pytest.mark.parametrize("shape", [(2, 2, 2, 2), (4, 3)], ids=["NHWC", "ND"])
def test_batchnorm_gradcheck_all_entries(shape, rng):
    x, gamma, beta = _bn_data(rng, shape)
    y, _, cache = ops.batchnorm_forward(x, gamma, beta, eps=EPS_BN)
    g = rng.standard_normal(y.shape)
    dx, dgamma, dbeta = ops.batchnorm_backward(g, cache)
    inputs = {"x": x, "gamma": gamma, "beta": beta}
    check_grads(_bn_objective(g), inputs, {"x": dx, "gamma": dgamma, "beta": dbeta}, op="batchnorm")


def test_batchnorm_gradcheck_directions(rng):
    x, gamma, beta = _bn_data(rng, (2, 6, 5, 4))
    y, _, cache = ops.batchnorm_forward(x, gamma, beta, eps=EPS_BN)
    g = rng.standard_normal(y.shape)
    dx, dgamma, dbeta = ops.batchnorm_backward(g, cache)
    inputs = {"x": x, "gamma": gamma, "beta": beta}
    grads = {"x": dx, "gamma": dgamma, "beta": dbeta}
    check_directions(_bn_objective(g), inputs, grads, rng, op="batchnorm")


# ---------------------------------------------------------------------------- dtype and purity


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batchnorm_dtype_preserved_and_inputs_untouched(dtype, rng):
    x, gamma, beta = _bn_data(rng, (2, 3, 3, 2), dtype)
    y, (mean, var), cache = assert_unmodified(ops.batchnorm_forward, x, gamma, beta)
    assert not np.shares_memory(y, x)
    dy = rng.standard_normal(y.shape).astype(dtype)
    grads = assert_unmodified(lambda dy: ops.batchnorm_backward(dy, cache), dy)
    assert all(a.dtype == dtype for a in (y, mean, var, *grads))
    stats = (np.zeros(2, dtype), np.ones(2, dtype))
    y_inf = assert_unmodified(ops.batchnorm_inference, x, gamma, beta, *stats)
    assert y_inf.dtype == dtype


# ------------------------------------------------------------------------------------ dropout


def test_dropout_rate_zero_is_the_identity(rng):
    x = rng.standard_normal((4, 5))
    y, mask = ops.dropout_forward(x, 0.0, np.random.default_rng(0))
    np.testing.assert_array_equal(y, x)
    np.testing.assert_array_equal(ops.dropout_backward(np.ones_like(x), mask), np.ones_like(x))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dropout_zeroes_about_rate_and_keeps_the_expectation(dtype):
    rate, x = 0.3, np.ones((200, 500), dtype)
    y, mask = ops.dropout_forward(x, rate, np.random.default_rng(7))
    assert y.dtype == mask.dtype == dtype
    scale = dtype(1 / (1 - rate))
    assert set(np.unique(mask).tolist()) == {0.0, float(scale)}
    dropped = np.mean(mask == 0)
    sigma = np.sqrt(rate * (1 - rate) / x.size)
    assert abs(dropped - rate) < 5 * sigma
    assert abs(y.mean() - 1.0) < 5 * sigma / (1 - rate)  # inverted dropout keeps E[y] = x
    np.testing.assert_array_equal(y, x * mask)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dropout_backward_uses_the_same_mask(dtype, rng):
    x = rng.standard_normal((3, 4, 5)).astype(dtype)
    y, mask = assert_unmodified(lambda x: ops.dropout_forward(x, 0.5, np.random.default_rng(1)), x)
    dy = rng.standard_normal(x.shape).astype(dtype)
    dx = assert_unmodified(lambda dy: ops.dropout_backward(dy, mask), dy)
    assert dx.dtype == dtype
    np.testing.assert_array_equal(dx == 0, y == 0)
    np.testing.assert_array_equal(dx, dy * mask)
    # the op is linear in x for a fixed mask: check that backward is its transpose
    assert np.sum(y * dy) == pytest.approx(np.sum(x * dx), rel=1e-5)


def test_dropout_gradcheck(rng):
    """With the generator re-seeded, every call draws the same mask: a fixed linear map to check."""
    x, g = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))

    def f(x):
        return float(np.sum(ops.dropout_forward(x, 0.4, np.random.default_rng(5))[0] * g))

    mask = ops.dropout_forward(x, 0.4, np.random.default_rng(5))[1]
    assert 0 < np.count_nonzero(mask) < mask.size
    check_grads(f, {"x": x}, {"x": ops.dropout_backward(g, mask)}, op="dropout")


def test_dropout_same_seed_same_mask_different_seed_different_mask(rng):
    x = rng.standard_normal((10, 10))
    a = ops.dropout_forward(x, 0.5, np.random.default_rng(3))[1]
    b = ops.dropout_forward(x, 0.5, np.random.default_rng(3))[1]
    c = ops.dropout_forward(x, 0.5, np.random.default_rng(4))[1]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("rate", [1.0, -0.1, 1.5])
def test_dropout_rate_is_checked(rate):
    with pytest.raises(ValueError, match=r"rate must be in \[0, 1\)"):
        ops.dropout_forward(np.ones(3), rate, np.random.default_rng(0))
