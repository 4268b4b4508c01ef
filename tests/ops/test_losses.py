"""Losses: fused softmax cross-entropy, cross-entropy of probabilities, binary cross-entropy (logits
and probabilities), mean squared error, Huber, KL divergence and focal cross-entropy: values,
reference loops, PyTorch oracle, gradients."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from ops_helpers import TOL, assert_close, assert_unmodified, check_grads, from_torch

from slidenet import ops
from slidenet.ops import losses as L
from slidenet.ops import reference
from torch_oracle import ORACLE_DTYPE, leaf

DTYPES = [np.float32, np.float64]


def _logits(rng, n=5, k=4, dtype=np.float64):
    return (rng.standard_normal((n, k)) * 2).astype(dtype)


def _probs(rng, n=5, k=4, dtype=np.float64):
    """Rows of probabilities, none below 0.04: far from the clipping and well conditioned."""
    p = rng.uniform(0.2, 1.0, size=(n, k))
    return (p / p.sum(axis=1, keepdims=True)).astype(dtype)


def _labels(rng, n=5, k=4):
    return rng.integers(0, k, size=n)


def _onehot(labels, k, dtype=np.float64):
    return np.eye(k, dtype=dtype)[labels]


def _soft_targets(rng, n=5, k=4):
    t = rng.random((n, k))
    return t / t.sum(axis=1, keepdims=True)


def _targets(kind, rng, n=5, k=4):
    """int labels, one-hot rows, soft rows (sum 1), or unnormalised rows (weights; one row 0)."""
    labels = _labels(rng, n, k)
    if kind == "labels":
        return labels
    if kind == "onehot":
        return _onehot(labels, k)
    t = _soft_targets(rng, n, k)
    if kind == "unnormalised":  # the gradient is softmax * sum(t) - t, not softmax - t
        t = t * rng.uniform(0.5, 2.0, (n, 1))
        t[0] = 0.0
    return t


TARGET_KINDS = ["labels", "onehot", "soft", "unnormalised"]


# ------------------------------------------------------------------------------------- golden


def test_uniform_logits_cost_log_k():
    loss, dz = ops.softmax_cross_entropy(np.zeros((3, 10)), np.array([0, 4, 9]))
    assert loss == pytest.approx(math.log(10), rel=1e-12)
    expected = np.full((3, 10), 0.1)
    expected[[0, 1, 2], [0, 4, 9]] -= 1
    np.testing.assert_allclose(dz, expected / 3, rtol=1e-12)


def test_confident_correct_logits_cost_nearly_nothing_and_never_overflow():
    logits = np.array([[1000.0, 0.0, -1000.0], [0.0, 2000.0, 0.0]])
    loss, dz = ops.softmax_cross_entropy(logits, np.array([0, 1]))
    assert loss == 0.0 and np.all(dz == 0.0)
    loss, dz = ops.softmax_cross_entropy(logits, np.array([2, 0]))  # confidently wrong
    assert loss == pytest.approx((2000 + 2000) / 2) and np.isfinite(dz).all()


def test_mean_squared_error_by_hand():
    loss, grad = ops.mean_squared_error(np.array([[1.0, 2.0]]), np.array([[0.0, 0.0]]))
    assert loss == 2.5
    np.testing.assert_array_equal(grad, [[1.0, 2.0]])  # 2 (pred - t) / size


def test_binary_cross_entropy_of_a_coin_is_log_2():
    loss, _ = ops.binary_cross_entropy(np.full((4, 1), 0.5), np.array([0, 1, 1, 0]))
    assert loss == pytest.approx(math.log(2), rel=1e-12)
    loss, _ = ops.sigmoid_binary_cross_entropy(np.zeros((4, 1)), np.array([0, 1, 1, 0]))
    assert loss == pytest.approx(math.log(2), rel=1e-12)


def test_probabilities_are_clipped_like_keras():
    """p = 0 for the true class costs -log(1e-7), not infinity; the gradient there is 0."""
    probs = np.array([[0.0, 1.0], [0.5, 0.5]])
    loss, grad = ops.cross_entropy(probs, np.array([0, 0]))
    assert loss == pytest.approx((-math.log(1e-7) - math.log(0.5)) / 2)
    np.testing.assert_allclose(grad, [[0.0, 0.0], [-1.0, 0.0]])
    loss, grad = ops.binary_cross_entropy(np.array([0.0, 1.0]), np.array([1.0, 0.0]))
    assert loss == pytest.approx(-math.log(1e-7), rel=1e-6) and np.all(grad == 0)


def test_sigmoid_binary_cross_entropy_is_stable_for_huge_logits():
    loss, grad = ops.sigmoid_binary_cross_entropy(np.array([1000.0, -1000.0]), np.array([0, 1]))
    assert loss == pytest.approx(1000.0) and np.isfinite(grad).all()
    np.testing.assert_array_equal(grad, [0.5, -0.5])  # (sigmoid(z) - t) / size


# ------------------------------------------------------------------- fast path vs reference loops


@pytest.mark.parametrize("targets", TARGET_KINDS)
def test_softmax_cross_entropy_matches_reference(targets, rng):
    logits, t = _logits(rng, 6, 5), _targets(targets, rng, 6, 5)
    loss, dz = ops.softmax_cross_entropy(logits, t)
    ref_loss, ref_dz = reference.softmax_cross_entropy(logits, t)
    assert_close(loss, ref_loss, op="softmax_cross_entropy", check="ref-f64")
    assert_close(dz, ref_dz, op="softmax_cross_entropy", check="ref-f64")


def test_labels_and_onehot_agree(rng):
    logits, labels = _logits(rng), _labels(rng)
    by_label = ops.softmax_cross_entropy(logits, labels)
    by_onehot = ops.softmax_cross_entropy(logits, _onehot(labels, 4))
    assert by_label[0] == pytest.approx(by_onehot[0], rel=1e-14)
    np.testing.assert_allclose(by_label[1], by_onehot[1], rtol=1e-14)
    by_prob = ops.cross_entropy(ops.softmax(logits), labels)
    assert by_prob[0] == pytest.approx(by_label[0], rel=1e-12)


# ------------------------------------------------------------------------------- PyTorch oracle


def _torch_loss_and_grad(fn, pred, *args):
    """The loss and its gradient by torch, in float64 whatever the dtype of ``pred``."""
    pt = leaf(pred)
    loss = fn(pt, *args)
    assert loss.dtype == ORACLE_DTYPE
    loss.backward()
    return loss.item(), from_torch(pt.grad)


def _check(loss, grad, oracle, op, dtype):
    check, tol = f"torch-{np.dtype(dtype).name}", TOL[np.dtype(dtype)]
    assert isinstance(loss, float)
    assert grad.dtype == dtype
    assert_close(loss, oracle[0], op=f"{op} loss", check=check, tol=tol)
    assert_close(grad, oracle[1], op=f"{op} grad", check=check)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("targets", TARGET_KINDS)
def test_softmax_cross_entropy_matches_torch(targets, dtype, rng):
    logits, t = _logits(rng, 6, 5, dtype), _targets(targets, rng, 6, 5)
    if targets == "labels":
        t_torch = leaf(t)
    else:
        t = t.astype(dtype)
        # torch takes rows of class probabilities (no need to sum to 1)
        t_torch = leaf(t, grad=False)
    loss, dz = ops.softmax_cross_entropy(logits, t)
    oracle = _torch_loss_and_grad(F.cross_entropy, logits, t_torch)
    _check(loss, dz, oracle, "softmax_cross_entropy", dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("targets", ["labels", "onehot"])
def test_cross_entropy_of_probabilities_matches_torch(targets, dtype, rng):
    probs, labels = _probs(rng, dtype=dtype), _labels(rng)
    t = labels if targets == "labels" else _onehot(labels, 4, dtype)
    loss, dp = ops.cross_entropy(probs, t)
    oracle = _torch_loss_and_grad(lambda p: F.nll_loss(torch.log(p), leaf(labels)), probs)
    _check(loss, dp, oracle, "cross_entropy", dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(6, 1), (3, 4)])
def test_sigmoid_binary_cross_entropy_matches_torch(shape, dtype, rng):
    logits = (rng.standard_normal(shape) * 3).astype(dtype)
    t = rng.integers(0, 2, size=shape[0] if shape[1] == 1 else shape)  # (N,) targets for (N, 1)
    loss, dz = ops.sigmoid_binary_cross_entropy(logits, t)
    t_torch = leaf(t.reshape(shape).astype(dtype), grad=False)
    oracle = _torch_loss_and_grad(F.binary_cross_entropy_with_logits, logits, t_torch)
    _check(loss, dz, oracle, "sigmoid_binary_cross_entropy", dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(6, 1), (3, 4)])
def test_binary_cross_entropy_matches_torch(shape, dtype, rng):
    probs = rng.uniform(0.02, 0.98, size=shape).astype(dtype)
    t = rng.integers(0, 2, size=shape[0] if shape[1] == 1 else shape)
    loss, dp = ops.binary_cross_entropy(probs, t)
    t_torch = leaf(t.reshape(shape).astype(dtype), grad=False)
    oracle = _torch_loss_and_grad(F.binary_cross_entropy, probs, t_torch)
    _check(loss, dp, oracle, "binary_cross_entropy", dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(6, 1), (3, 4)])
def test_mean_squared_error_matches_torch(shape, dtype, rng):
    pred = rng.standard_normal(shape).astype(dtype)
    t = rng.standard_normal(shape[0] if shape[1] == 1 else shape)
    loss, grad = ops.mean_squared_error(pred, t)
    oracle = _torch_loss_and_grad(
        F.mse_loss, pred, leaf(t.reshape(shape).astype(dtype), grad=False)
    )
    _check(loss, grad, oracle, "mean_squared_error", dtype)


# ------------------------------------------------------------------------ numerical gradients


def _gradcheck(fn, pred, targets, op):
    _, grad = fn(pred, targets)
    check_grads(lambda pred: fn(pred, targets)[0], {"pred": pred}, {"pred": grad}, op=op)


@pytest.mark.parametrize("targets", TARGET_KINDS)
def test_softmax_cross_entropy_gradcheck(targets, rng):
    t = _targets(targets, rng)
    _gradcheck(ops.softmax_cross_entropy, _logits(rng), t, "softmax_cross_entropy")


def test_cross_entropy_gradcheck(rng):
    _gradcheck(ops.cross_entropy, _probs(rng), _onehot(_labels(rng), 4), "cross_entropy")


def test_binary_cross_entropy_gradchecks(rng):
    t = rng.integers(0, 2, size=(4, 3))
    _gradcheck(ops.sigmoid_binary_cross_entropy, rng.standard_normal((4, 3)) * 2, t,
               "sigmoid_binary_cross_entropy")  # fmt: skip
    _gradcheck(ops.binary_cross_entropy, rng.uniform(0.05, 0.95, (4, 3)), t, "binary_cross_entropy")


def test_mean_squared_error_gradcheck(rng):
    _gradcheck(ops.mean_squared_error, rng.standard_normal((4, 3)), rng.standard_normal((4, 3)),
               "mean_squared_error")  # fmt: skip


# ---------------------------------------------------------------------------- dtype and purity


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    ("fn", "make_pred", "make_targets"),
    [
        (ops.softmax_cross_entropy, _logits, _labels),
        (ops.softmax_cross_entropy, _logits, lambda rng: _onehot(_labels(rng), 4)),
        (ops.cross_entropy, _probs, _labels),
        (ops.sigmoid_binary_cross_entropy, _logits, lambda rng: rng.integers(0, 2, (5, 4))),
        (ops.binary_cross_entropy, _probs, lambda rng: rng.integers(0, 2, (5, 4))),
        (ops.mean_squared_error, _logits, lambda rng: rng.standard_normal((5, 4))),
    ],
    ids=["sce-labels", "sce-onehot", "ce", "sigmoid-bce", "bce", "mse"],
)
def test_dtype_preserved_and_inputs_untouched(fn, make_pred, make_targets, dtype, rng):
    pred, targets = make_pred(rng).astype(dtype), make_targets(rng)
    loss, grad = assert_unmodified(fn, pred, targets)
    assert isinstance(loss, float) and math.isfinite(loss)
    assert grad.dtype == dtype and grad.shape == pred.shape
    assert not np.shares_memory(grad, pred)


# ------------------------------------------ Huber, KL divergence, focal cross-entropy (Keras 3)


def test_huber_by_hand():
    # errors 0.5 (quadratic: 0.125), -3 (linear: 3 - 0.5 = 2.5); delta = 1
    loss, grad = L.huber(np.array([[0.5, -3.0]]), np.zeros((1, 2)))
    assert loss == pytest.approx((0.125 + 2.5) / 2, rel=1e-15)
    np.testing.assert_array_equal(grad, [[0.25, -0.5]])  # e / size, delta sign(e) / size


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("delta", [0.3, 1.0, 2.5])
def test_huber_matches_torch(delta, dtype, rng):
    pred = (rng.standard_normal((5, 3)) * 2).astype(dtype)
    t = rng.standard_normal((5, 3))
    loss, grad = L.huber(pred, t, delta)
    oracle = _torch_loss_and_grad(
        lambda p: F.huber_loss(p, leaf(t.astype(dtype), grad=False), delta=delta), pred
    )
    _check(loss, grad, oracle, "huber", dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_kl_divergence_matches_torch(dtype, rng):
    probs, t = _probs(rng, dtype=dtype), _soft_targets(rng)
    loss, grad = L.kl_divergence(probs, t)
    oracle = _torch_loss_and_grad(
        lambda p: F.kl_div(torch.log(p), leaf(t.astype(dtype), grad=False), reduction="batchmean"),
        probs,
    )
    _check(loss, grad, oracle, "kl_divergence", dtype)


def test_kl_divergence_of_equal_distributions_is_zero_and_clips_like_keras(rng):
    t = _soft_targets(rng)
    assert L.kl_divergence(t, t)[0] == pytest.approx(0.0, abs=1e-15)
    # a target of 0 counts as 1e-7, a prediction of 0 as 1e-7 (no gradient through the clip)
    loss, grad = L.kl_divergence(np.array([[0.0, 1.0]]), np.array([[0.5, 0.5]]))
    want = 0.5 * math.log(0.5 / 1e-7) + 0.5 * math.log(0.5)
    assert loss == pytest.approx(want, rel=1e-12)
    np.testing.assert_allclose(grad, [[0.0, -0.5]])


def _focal_by_hand(probs, t, alpha, gamma):
    """The definition, row by row, with Keras' normalisation and clipping."""
    total = 0.0
    for row_p, row_t in zip(probs, t, strict=True):
        q = np.clip(row_p / row_p.sum(), 1e-7, 1 - 1e-7)
        terms = zip(q, row_t, strict=True)
        total += sum(-alpha * (1 - qk) ** gamma * tk * math.log(qk) for qk, tk in terms)
    return total / len(probs)


@pytest.mark.parametrize(("alpha", "gamma"), [(0.25, 2.0), (1.0, 0.0), (0.5, 0.5), (0.7, 3.0)])
@pytest.mark.parametrize("targets", ["onehot", "soft"])
def test_focal_crossentropy_values_and_gradcheck(alpha, gamma, targets, rng):
    probs = _probs(rng) * rng.uniform(0.5, 2.0, (5, 1))  # rows not summing to 1: normalised
    t = _targets(targets, rng)
    fn = lambda p, t: L.categorical_focal_crossentropy(p, t, alpha, gamma)  # noqa: E731
    loss, _ = fn(probs, t)
    assert loss == pytest.approx(_focal_by_hand(probs, t, alpha, gamma), rel=1e-12)
    _gradcheck(fn, probs, t, "categorical_focal_crossentropy")


@pytest.mark.parametrize(("alpha", "gamma"), [(0.25, 2.0), (1.0, 0.0), (0.5, 0.5), (0.7, 3.0)])
@pytest.mark.parametrize("targets", ["onehot", "soft"])
def test_softmax_focal_crossentropy_gradcheck_and_agreement(alpha, gamma, targets, rng):
    logits, t = _logits(rng), _targets(targets, rng)
    fn = lambda z, t: L.softmax_focal_crossentropy(z, t, alpha, gamma)  # noqa: E731
    _gradcheck(fn, logits, t, "softmax_focal_crossentropy")
    # the same value as the probability form on softmax(logits) (no clipping at these values)
    assert fn(logits, t)[0] == pytest.approx(
        L.categorical_focal_crossentropy(ops.softmax(logits), t, alpha, gamma)[0], rel=1e-12
    )


@pytest.mark.parametrize("dtype", DTYPES)
def test_focal_with_gamma_0_alpha_1_is_cross_entropy_matching_torch(dtype, rng):
    logits, labels = _logits(rng, dtype=dtype), _labels(rng)
    loss, dz = L.softmax_focal_crossentropy(logits, _onehot(labels, 4, dtype), 1.0, 0.0)
    oracle = _torch_loss_and_grad(F.cross_entropy, logits, leaf(labels))
    _check(loss, dz, oracle, "softmax_focal_crossentropy", dtype)


def test_softmax_focal_is_stable_for_extreme_logits():
    logits = np.array([[1000.0, 0.0, -1000.0], [-1000.0, 1000.0, 0.0]])
    for label in range(3):
        t = _onehot(np.array([label, label]), 3)
        for gamma in (0.0, 0.5, 2.0):
            loss, dz = L.softmax_focal_crossentropy(logits, t, 0.25, gamma)
            assert math.isfinite(loss) and np.isfinite(dz).all(), (label, gamma)
            loss32, dz32 = L.softmax_focal_crossentropy(logits.astype(np.float32), t, 0.25, gamma)
            assert math.isfinite(loss32) and np.isfinite(dz32).all()
    # a confident right answer costs nothing; a confident wrong one alpha * 2000 / 2 per row
    loss, dz = L.softmax_focal_crossentropy(logits, _onehot(np.array([0, 1]), 3), 0.25, 2.0)
    assert loss == 0.0 and np.all(dz == 0)
    loss, _ = L.softmax_focal_crossentropy(logits, _onehot(np.array([2, 0]), 3), 0.25, 2.0)
    assert loss == pytest.approx(0.25 * (2000 + 2000) / 2)


def test_smooth_labels():
    t = L.smooth_labels(np.array([0, 2]), 4, 0.2, np.float32)
    np.testing.assert_allclose(t, [[0.85, 0.05, 0.05, 0.05], [0.05, 0.05, 0.85, 0.05]], rtol=1e-6)
    assert t.dtype == np.float32
    np.testing.assert_array_equal(L.smooth_labels(np.eye(3)[[1]], 3, 0.0, np.float64), [[0, 1, 0]])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    ("fn", "make_pred", "make_targets"),
    [
        (L.huber, _logits, lambda rng: rng.standard_normal((5, 4))),
        (L.kl_divergence, _probs, lambda rng: _soft_targets(rng)),
        (L.categorical_focal_crossentropy, _probs, lambda rng: _onehot(_labels(rng), 4)),
        (L.softmax_focal_crossentropy, _logits, lambda rng: _onehot(_labels(rng), 4)),
    ],
    ids=["huber", "kld", "focal", "softmax-focal"],
)
def test_new_losses_keep_dtype_and_inputs(fn, make_pred, make_targets, dtype, rng):
    pred, targets = make_pred(rng).astype(dtype), make_targets(rng)
    loss, grad = assert_unmodified(fn, pred, targets)
    assert isinstance(loss, float) and math.isfinite(loss)
    assert grad.dtype == dtype and grad.shape == pred.shape


def test_huber_and_kl_gradchecks(rng):
    pred = rng.standard_normal((4, 3)) * 2
    _gradcheck(L.huber, pred, np.round(pred) + 0.37, "huber")  # errors away from +-delta
    _gradcheck(L.kl_divergence, _probs(rng), _soft_targets(rng), "kl_divergence")
