"""Compiled softmax cross-entropy, batch normalisation and dropout against the NumPy path.

Each case runs the public op under kernels.using("numpy") (the reference) and
kernels.using("numba") and compares: dropout bit for bit (same draws, same mask, same output);
softmax cross-entropy and batch norm to 1e-5 (float32) / 1e-12 (float64) relative, measured
against the size of the numbers involved (an entry that cancels to nearly 0 is compared to its
row's or channel's scale, the accuracy either path can give it). The kernels sum in float64, so
they are also checked against a float64 run of the NumPy path, which they match more closely than
the float32 NumPy path does.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slidenet import layers, ops
from slidenet.ops import kernels
from slidenet.ops import losses as losses_ops

pytest.importorskip("numba")

TOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}
DTYPES = [np.float32, np.float64]


def _both(fn, *args):
    """fn(*args) under the NumPy path, then under the compiled kernels."""
    out = []
    for backend in ("numpy", "numba"):
        with kernels.using(backend):
            out.append(fn(*args))
    return out


def assert_close(actual, expected, rtol, scale=None):
    """|actual - expected| <= rtol * scale everywhere, scale = max |expected| by default."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    if scale is None:
        scale = np.abs(expected).max() if expected.size else 0.0
    np.testing.assert_allclose(actual, expected, rtol=0, atol=rtol * max(scale, 1e-30))


# ---------------------------------------------------------------- softmax cross-entropy


def _logits(rng, n, k, dtype, spread=3.0):
    return (rng.standard_normal((n, k)) * spread).astype(dtype)


def _compare_ce(logits, targets):
    (la, ga), (lb, gb) = _both(ops.softmax_cross_entropy, logits, targets)
    tol = TOL[logits.dtype]
    assert isinstance(lb, float)
    assert lb == float(logits.dtype.type(lb)) or np.isnan(lb)  # the dtype's digits, as NumPy
    assert lb == pytest.approx(la, rel=tol, abs=tol)
    # a gradient row is (p - t) / N: entries of size up to 1 / N, so compare at that scale
    assert_close(gb, ga, tol, scale=1.0 / logits.shape[0])
    return gb


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n, k", [(100, 10), (1, 2), (7, 1), (33, 128), (5, 300)])
def test_softmax_cross_entropy_labels_and_rows(n, k, dtype, rng):
    logits = _logits(rng, n, k, dtype)
    labels = rng.integers(0, k, n)
    _compare_ce(logits, labels)
    _compare_ce(logits, labels.astype(np.int32))
    _compare_ce(logits, np.eye(k)[labels])  # one-hot rows (float64: cast to logits' dtype)
    probs = rng.random((n, k))
    _compare_ce(logits, (probs / probs.sum(axis=1, keepdims=True)).astype(dtype))
    _compare_ce(logits, losses_ops.smooth_labels(labels, k, 0.1, dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_cross_entropy_against_a_float64_reference(dtype, rng):
    logits = _logits(rng, 100, 10, dtype, spread=10.0)
    labels = rng.integers(0, 10, 100)
    with kernels.using("numpy"):
        ref_loss, ref_grad = ops.softmax_cross_entropy(logits.astype(np.float64), labels)
    with kernels.using("numba"):
        loss, grad = ops.softmax_cross_entropy(logits, labels)
    assert loss == pytest.approx(ref_loss, rel=TOL[np.dtype(dtype)])
    assert_close(grad.astype(np.float64), ref_grad, TOL[np.dtype(dtype)], scale=1 / 100)


def test_softmax_cross_entropy_extreme_logits_and_negative_labels(rng):
    logits = np.array([[1e4, -1e4, 0.0], [-50.0, -50.0, -50.0], [88.0, 89.0, 87.0]], np.float32)
    for labels in (np.array([0, 1, 2]), np.array([-1, -3, 1])):  # -1 is the last class (NumPy)
        _compare_ce(logits, labels)


def test_softmax_cross_entropy_bad_labels_raise_the_numpy_error(rng):
    logits = _logits(rng, 4, 3, np.float32)
    for labels in (np.array([0, 1, 3, 0]), np.array([0, -4, 1, 2])):
        for backend in ("numpy", "numba"):
            with kernels.using(backend), pytest.raises(IndexError):
                ops.softmax_cross_entropy(logits, labels)


def test_softmax_cross_entropy_nan_logits_give_nan_on_both_paths(rng):
    logits = _logits(rng, 4, 3, np.float64)
    logits[1, 2] = np.nan
    with np.errstate(invalid="ignore"):
        (la, ga), (lb, gb) = _both(ops.softmax_cross_entropy, logits, np.array([0, 1, 2, 0]))
    assert np.isnan(la) and np.isnan(lb)
    np.testing.assert_array_equal(np.isnan(ga), np.isnan(gb))
    assert np.isnan(gb[1]).all() and not np.isnan(gb[[0, 2, 3]]).any()


@pytest.mark.parametrize(
    "logits, targets",
    [
        (np.zeros((3, 4), np.float16), np.array([0, 1, 2])),  # no kernel for float16
        (np.zeros((3, 200), np.float32), np.array([0, 1, 2])),  # many classes: NumPy is faster
        (np.zeros((3, 4), np.float32), np.array([0.0, 1.0, 2.0])),  # float labels: IndexError
    ],
)
def test_softmax_cross_entropy_cases_without_kernel_match(logits, targets):
    outs = []
    for backend in ("numpy", "numba"):
        with kernels.using(backend):
            try:
                outs.append(ops.softmax_cross_entropy(logits, targets))
            except IndexError as e:
                outs.append(str(e))
    if isinstance(outs[0], str):
        assert outs[0] == outs[1]
    else:
        assert outs[0][0] == outs[1][0]
        np.testing.assert_array_equal(outs[0][1], outs[1][1])


@settings(max_examples=80, deadline=None)
@given(
    n=st.integers(1, 40),
    k=st.integers(1, 128),
    dtype=st.sampled_from(DTYPES),
    spread=st.sampled_from([0.0, 1.0, 30.0]),
    rows=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_property_softmax_cross_entropy(n, k, dtype, spread, rows, seed):
    rng = np.random.default_rng(seed)
    logits = _logits(rng, n, k, dtype, spread)
    labels = rng.integers(-k, k, n)
    _compare_ce(logits, np.eye(k, dtype=dtype)[labels] if rows else labels)


def test_sparse_categorical_crossentropy_loss_uses_the_kernel(rng):
    from slidenet import losses

    loss = losses.SparseCategoricalCrossentropy(from_logits=True)
    logits = _logits(rng, 16, 5, np.float32)
    y = rng.integers(0, 5, 16)
    (la, ga), (lb, gb) = _both(loss.forward, y, logits)
    assert lb == pytest.approx(la, rel=1e-5)
    assert_close(gb, ga, 1e-5, scale=1 / 16)


# ---------------------------------------------------------------- batch normalisation


def _bn(x, gamma, beta, dy, eps=1e-3):
    y, (mean, var), cache = ops.batchnorm_forward(x, gamma, beta, eps)
    dx, dgamma, dbeta = ops.batchnorm_backward(dy, cache)
    return y, mean, var, cache.xhat, cache.inv_std, dx, dgamma, dbeta


def _bn_inputs(rng, shape, dtype, loc=1.0, spread=2.0):
    c = shape[-1]
    x = (rng.standard_normal(shape) * spread + loc).astype(dtype)
    gamma = rng.standard_normal(c).astype(dtype)
    beta = rng.standard_normal(c).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    return x, gamma, beta, dy


def _scales(x, gamma, beta, dy, ref):
    """The size of the numbers each output is computed from, what an error is measured against:
    a mean near 0 is only known to the size of the data, a sum to the sum of |terms|, and xhat
    = (x - mean) * inv_std to |x| * inv_std (the rounding of x - mean), which carries over to y,
    dgamma and dx; a variance to mean(x^2), and inv_std = (var + eps)^-1/2 to that times its
    derivative."""
    inv_std = np.asarray(ref[4], np.float64)
    c = x.shape[-1]
    m = x.size // c
    x2 = np.abs(x.reshape(-1, c).astype(np.float64))
    dy2 = np.abs(dy.reshape(-1, c).astype(np.float64))
    g = np.abs(gamma.astype(np.float64))
    var = (x2 * x2).mean(axis=0).max()
    xhat = inv_std.max() * x2.max()
    dbeta = dy2.sum(axis=0).max()
    dgamma = dbeta * xhat
    return {
        "y": g.max() * xhat + np.abs(beta).max(),
        "mean": x2.mean(axis=0).max(),
        "var": var,
        "xhat": xhat,
        "inv_std": max(inv_std.max(), 0.5 * inv_std.max() ** 3 * var),  # d inv_std / d var
        "dx": (inv_std * g).max() * (dy2.max() + dbeta / m + xhat * dgamma / m),
        "dgamma": dgamma,
        "dbeta": dbeta,
    }


NAMES = ["y", "mean", "var", "xhat", "inv_std", "dx", "dgamma", "dbeta"]


def _compare_bn(x, gamma, beta, dy, tol=None, eps=1e-3):
    """The compiled batch norm against the NumPy path (same dtype) and, for float32, against a
    float64 run of the NumPy path; returns the compiled outputs."""
    ref, out = _both(_bn, x, gamma, beta, dy, eps)
    tol = tol or TOL[x.dtype]
    scales = _scales(x, gamma, beta, dy, ref)
    for name, a, b in zip(NAMES, out, ref, strict=True):
        assert a.shape == b.shape and a.dtype == b.dtype, name
        np.testing.assert_allclose(a, b, rtol=0, atol=tol * scales[name], err_msg=name)
    if x.dtype == np.float32:
        with kernels.using("numpy"):
            exact = _bn(*(a.astype(np.float64) for a in (x, gamma, beta, dy)), eps)
        for name, a, b in zip(NAMES, out, exact, strict=True):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-6 * scales[name], err_msg=name)
    return out


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "shape",
    [(100, 14, 14, 64), (8, 5, 7, 3), (1, 1, 1, 4), (300, 1), (2, 3), (10, 128), (4, 6, 5)],
)
def test_batchnorm_forward_backward(shape, dtype, rng):
    _compare_bn(*_bn_inputs(rng, shape, dtype))


def test_batchnorm_far_from_zero_and_constant_channels(rng):
    """A large mean (variance by two passes, not E[x^2] - E[x]^2) and a constant channel."""
    x, gamma, beta, dy = _bn_inputs(rng, (16, 4, 4, 3), np.float64, loc=1e4, spread=1e-2)
    x[..., 1] = 7.0
    y, mean, var, *_ = _compare_bn(x, gamma, beta, dy)
    assert var[1] == 0 and mean[1] == 7.0
    x32, gamma32, beta32, dy32 = (a.astype(np.float32) for a in (x, gamma, beta, dy))
    _compare_bn(x32 - np.float32(1e4), gamma32, beta32, dy32)


def test_batchnorm_gamma_of_another_dtype_and_non_contiguous_input(rng):
    x, gamma, beta, dy = _bn_inputs(rng, (6, 5, 4, 8), np.float32)
    _compare_bn(x, gamma.astype(np.float64), beta.astype(np.float64), dy)  # cast to x's dtype
    # a transposed view has no kernel: the NumPy path runs, the same numbers exactly
    xt, dyt = x.transpose(0, 2, 1, 3), dy.transpose(0, 2, 1, 3)
    ref, out = _both(_bn, xt, gamma, beta, dyt)
    for a, b in zip(out, ref, strict=True):
        np.testing.assert_array_equal(a, b)


def test_batchnorm_backward_of_a_numpy_forward_cache(rng):
    """A cache made on one path works on the other (the cache is the same NamedTuple)."""
    x, gamma, beta, dy = _bn_inputs(rng, (9, 3, 3, 5), np.float64)
    with kernels.using("numpy"):
        _, _, cache = ops.batchnorm_forward(x, gamma, beta)
        ref = ops.batchnorm_backward(dy, cache)
    with kernels.using("numba"):
        out = ops.batchnorm_backward(dy, cache)
    for a, b in zip(out, ref, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12 * np.abs(b).max())


@settings(max_examples=60, deadline=None)
@given(
    shape=st.lists(st.integers(1, 9), min_size=2, max_size=4).map(tuple),
    dtype=st.sampled_from(DTYPES),
    loc=st.sampled_from([0.0, 3.0, -100.0]),
    spread=st.sampled_from([1e-3, 1.0, 50.0]),
    eps=st.sampled_from([1e-3, 1e-5]),
    seed=st.integers(0, 2**16),
)
def test_property_batchnorm(shape, dtype, loc, spread, eps, seed):
    rng = np.random.default_rng(seed)
    x, gamma, beta, dy = _bn_inputs(rng, shape, dtype, loc, spread)
    _compare_bn(x, gamma, beta, dy, eps=eps)


def test_batchnorm_layer_trains_the_same_on_both_paths(rng):
    x = rng.standard_normal((12, 6, 6, 4)).astype(np.float32)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    results = []
    for backend in ("numpy", "numba"):
        layer = layers.BatchNormalization()
        layer.build(x.shape[1:])
        with kernels.using(backend):
            y = layer.forward(x, training=True)
            dx = layer.backward(dy)
        results.append((y, dx, *layer.grads[:2], layer.moving_mean, layer.moving_variance))
    for a, b in zip(*results, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5 * np.abs(b).max())


# ---------------------------------------------------------------- dropout


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize("shape", [(100, 14, 14, 64), (3, 7), (5,), (0, 4), ()])
@pytest.mark.parametrize("rate", [0.0, 0.3, 0.9])
def test_dropout_is_bit_for_bit_the_numpy_dropout(shape, dtype, rate):
    x = np.random.default_rng(3).standard_normal(shape).astype(dtype)
    x.reshape(-1)[:3] = [np.inf, -0.0, np.nan][: x.size]
    outs, states = [], []
    for backend in ("numpy", "numba"):
        rng = np.random.default_rng(11)
        with kernels.using(backend), np.errstate(invalid="ignore"):
            y, mask = ops.dropout_forward(x, rate, rng)
            dx = ops.dropout_backward(x[::-1].copy() if x.ndim else x, mask)
        outs.append((y, mask, dx))
        states.append(rng.random())  # the generator moved on by the same draws
    for a, b in zip(*outs, strict=True):
        np.testing.assert_array_equal(a, b, strict=True)
    assert states[0] == states[1]


def test_dropout_non_contiguous_input(rng):
    x = rng.standard_normal((6, 8)).astype(np.float32)[:, ::2]
    outs = []
    for backend in ("numpy", "numba"):
        with kernels.using(backend):
            outs.append(ops.dropout_forward(x, 0.5, np.random.default_rng(2)))
    for a, b in zip(*outs, strict=True):
        np.testing.assert_array_equal(a, b, strict=True)
