"""Numerical stability at the extremes: every value finite and equal to the exact answer.

Cross-entropy with logits of magnitude 1e4 (fused softmax + CE, sparse and one-hot, the loss
classes with from_logits True and False, and through a model), sigmoid and binary cross-entropy at
+-1e4, batch norm on a constant batch, and max pooling (and ReLU) over -inf.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit

import slidenet as sn
from slidenet import layers as L
from slidenet import losses, ops
from slidenet.ops import losses as loss_ops
from slidenet.ops.normalization import batchnorm_backward, batchnorm_forward

BIG = 1e4
DTYPES = [np.float32, np.float64]
# logits of magnitude 1e4: row 0 is right with margin 2e4, row 1 wrong by 2e4, row 2 a tie
LOGITS = [[BIG, -BIG, 0.0], [BIG, -BIG, 0.0], [BIG, BIG, -BIG]]
LABELS = np.array([0, 1, 0])
# exact per-row losses: 0 (e^-1e4 underflows), 2e4, log 2
EXACT = np.array([0.0, 2 * BIG, np.log(2.0)])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("onehot", [False, True])
def test_fused_softmax_cross_entropy_with_logits_of_1e4(dtype, onehot):
    z = np.array(LOGITS, dtype)
    t = np.eye(3, dtype=dtype)[LABELS] if onehot else LABELS
    loss, grad = loss_ops.softmax_cross_entropy(z, t)
    assert np.isfinite(loss) and np.isfinite(grad).all()
    assert loss == pytest.approx(EXACT.mean(), rel=1e-6)
    # gradient (softmax(z) - onehot) / N: exact rows [0,0,0], [1,-1,0]/3, [.5-1, .5, 0]/3
    expected = np.array([[0, 0, 0], [1, -1, 0], [-0.5, 0.5, 0]]) / 3
    np.testing.assert_allclose(grad, expected, atol=1e-7)
    assert grad.dtype == dtype


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "loss_cls, targets",
    [
        (losses.SparseCategoricalCrossentropy, LABELS),
        (losses.CategoricalCrossentropy, np.eye(3)[LABELS]),
    ],
)
def test_loss_classes_from_logits_with_logits_of_1e4(dtype, loss_cls, targets):
    z = np.array(LOGITS, dtype)
    value = loss_cls(from_logits=True)(targets, z)
    assert value == pytest.approx(EXACT.mean(), rel=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "loss_cls, targets",
    [
        (losses.SparseCategoricalCrossentropy, LABELS),
        (losses.CategoricalCrossentropy, np.eye(3)[LABELS]),
    ],
)
def test_loss_classes_on_saturated_probabilities(dtype, loss_cls, targets):
    """softmax(1e4 logits) is exactly 0 / 1; probabilities are clipped to [1e-7, 1 - 1e-7] as Keras
    does, so a certain mistake costs -log(1e-7) = 16.118, not inf."""
    probs = ops.softmax(np.array(LOGITS, dtype))
    assert set(np.unique(probs)) <= {0.0, 0.5, 1.0}
    value = loss_cls(from_logits=False)(targets, probs)
    clip = -np.log(1e-7)
    expected = (-np.log(1 - 1e-7) + clip + np.log(2.0)) / 3
    assert np.isfinite(value) and value == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_at_the_extremes(dtype):
    x = np.array([-BIG, -100.0, -30.0, 0.0, 30.0, 100.0, BIG], dtype)
    y, cache = ops.sigmoid_forward(x)
    assert np.isfinite(y).all() and y.dtype == dtype
    # float32 subnormals (sigmoid(-100) = 3.7e-44) carry few digits: absolute tolerance there
    np.testing.assert_allclose(y, expit(x.astype(np.float64)), rtol=1e-6, atol=np.finfo(dtype).tiny)
    assert y[0] == 0.0 and y[-1] == 1.0 and y[3] == 0.5
    dx = ops.sigmoid_backward(np.ones_like(x), cache)
    assert np.isfinite(dx).all() and dx[0] == 0.0 and dx[-1] == 0.0 and dx[3] == 0.25


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_binary_cross_entropy_with_logits_of_1e4(dtype):
    z = np.array([[BIG], [-BIG], [BIG], [-BIG], [0.0]], dtype)
    t = np.array([[1], [0], [0], [1], [1]])
    loss, grad = loss_ops.sigmoid_binary_cross_entropy(z, t)
    # exact: 0, 0, 1e4, 1e4, log 2
    assert loss == pytest.approx((2 * BIG + np.log(2.0)) / 5, rel=1e-6)
    np.testing.assert_allclose(grad[:, 0], np.array([0, 0, 1, -1, -0.5]) / 5, atol=1e-7)
    value = losses.BinaryCrossentropy(from_logits=True)(t, z)
    assert value == pytest.approx(loss, rel=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_binary_cross_entropy_on_saturated_probabilities(dtype):
    p = ops.sigmoid(np.array([[BIG], [-BIG], [BIG]], dtype))  # exactly 1, 0, 1
    t = np.array([[1], [0], [0]])
    loss, grad = loss_ops.binary_cross_entropy(p, t)
    assert np.isfinite(loss) and np.isfinite(grad).all()
    # two right answers clipped at 1 - 1e-7 cost -log(1 - 1e-7); the wrong one -log(1e-7)
    eps = 1e-7
    p_clip = float(np.clip(np.asarray(1.0, dtype), eps, 1 - eps))
    expected = (-2 * np.log(p_clip) - np.log(1 - p_clip)) / 3
    assert loss == pytest.approx(expected, rel=1e-5)
    assert losses.BinaryCrossentropy()(t, p) == pytest.approx(loss, rel=1e-6)


@pytest.mark.parametrize("loss", ["sparse_categorical_crossentropy", "binary_crossentropy"])
def test_model_loss_with_logits_of_1e4_uses_the_fused_form(loss):
    units, act = (3, "softmax") if loss.startswith("sparse") else (1, "sigmoid")
    model = sn.Sequential([L.Input((1,)), L.Dense(units, activation=act)])
    model.compile("sgd", loss=loss)
    kernel = np.array([[BIG, -BIG, 0.0]]) if units == 3 else np.array([[BIG]])
    model.set_weights([kernel, np.zeros(units)])
    x = np.array([[1.0], [1.0], [-1.0]])
    y = np.array([0, 1, 1]) if units == 3 else np.array([1, 0, 0])
    value = model.evaluate(x, y, verbose=0)
    # softmax rows: right (0), wrong by 2e4, right (0): mean 2e4 / 3; sigmoid: 0, 1e4, 0
    exact = 2 * BIG / 3 if units == 3 else BIG / 3
    assert value == pytest.approx(exact, rel=1e-6)
    history = model.fit(x, y, epochs=1, batch_size=3, verbose=0, shuffle=False)
    assert history.history["loss"][0] == pytest.approx(exact, rel=1e-6)
    assert all(np.isfinite(w).all() for w in model.get_weights())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("value", [0.0, 7.5, -3e3])
def test_batchnorm_on_a_constant_batch(dtype, value):
    x = np.full((8, 3, 3, 2), value, dtype)
    gamma, beta = np.array([2.0, 0.5], dtype), np.array([0.25, -1.0], dtype)
    y, (mean, var), cache = batchnorm_forward(x, gamma, beta, eps=1e-3)
    assert np.isfinite(y).all()
    np.testing.assert_allclose(mean, value, rtol=1e-6)
    np.testing.assert_allclose(var, 0.0, atol=1e-6 * max(1.0, abs(value)) ** 2)
    np.testing.assert_allclose(y, np.broadcast_to(beta, y.shape), atol=1e-3)
    dy = np.random.default_rng(0).normal(size=x.shape).astype(dtype)
    dx, dgamma, dbeta = batchnorm_backward(dy, cache)
    assert np.isfinite(dx).all() and np.isfinite(dgamma).all()
    # all of x moved together changes nothing (the mean absorbs it): sum of dx per channel is 0
    np.testing.assert_allclose(dx.sum(axis=(0, 1, 2)), 0.0, atol=1e-3)
    np.testing.assert_allclose(dbeta, dy.sum(axis=(0, 1, 2)), rtol=1e-5)


def test_batchnorm_layer_trains_on_a_constant_batch():
    layer = L.BatchNormalization(momentum=0.5)
    x = np.full((4, 5), 3.0, np.float32)
    y = layer(x, training=True)
    np.testing.assert_allclose(y, 0.0, atol=1e-6)
    np.testing.assert_allclose(layer.moving_mean, 1.5)  # 0.5 * 0 + 0.5 * 3
    np.testing.assert_allclose(layer.moving_variance, 0.5)  # 0.5 * 1 + 0.5 * 0
    dx = layer.backward(np.ones_like(y))
    assert np.isfinite(dx).all() and np.isfinite(layer.grads[0]).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("padding", ["valid", "same"])
def test_max_pooling_over_minus_infinity(dtype, padding):
    x = np.full((1, 4, 4, 2), -np.inf, dtype)
    x[0, 0, 0, 1], x[0, 3, 2, 1] = 5.0, -2.0  # channel 1: one window per value, others -inf
    y, cache = ops.max_pool2d_forward(x, 2, padding=padding)
    assert not np.isnan(y).any()
    expected = np.full((1, 2, 2, 2), -np.inf, dtype)
    expected[0, 0, 0, 1], expected[0, 1, 1, 1] = 5.0, -2.0
    np.testing.assert_array_equal(y, expected)
    dx = ops.max_pool2d_backward(np.ones_like(y), cache)
    assert np.isfinite(dx).all()
    # each window sends its gradient to exactly one input element
    assert dx.sum() == y.size and dx[0, 0, 0, 1] == 1 and dx[0, 3, 2, 1] == 1


def test_max_pooling_layer_then_relu_over_minus_infinity():
    x = np.full((1, 2, 2, 1), -np.inf, np.float32)
    y = L.MaxPooling2D(2)(x)
    assert y[0, 0, 0, 0] == -np.inf
    assert ops.relu(y)[0, 0, 0, 0] == 0.0  # relu(-inf) is 0, not NaN
    assert L.ReLU()(x).max() == 0.0 and not np.isnan(L.ReLU()(x)).any()


def test_global_max_pooling_over_minus_infinity():
    x = np.full((2, 3, 3, 1), -np.inf, np.float64)
    x[1, 2, 2, 0] = 1.0
    layer = L.GlobalMaxPooling2D()
    np.testing.assert_array_equal(layer(x)[:, 0], [-np.inf, 1.0])
    dx = layer.backward(np.ones((2, 1)))
    assert np.isfinite(dx).all() and dx.sum() == 2 and dx[1, 2, 2, 0] == 1
