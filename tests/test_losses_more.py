"""Keras 3 losses beyond the basics: label smoothing (categorical and binary cross-entropy), Huber,
KL divergence and the categorical focal cross-entropy: values and gradients against torch
(float64, through tests/torch_oracle.py) where torch has them, float64 finite differences
otherwise, the fused softmax path, names, and the round trip through model files."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import slidenet as sn
from slidenet import losses
from torch_oracle import leaf, to_numpy

RTOL, ATOL = 1e-10, 1e-12


def ours(loss, y_true, y_pred):
    y = loss.check_targets(y_true, y_pred.shape, "test")
    value, grad = loss.forward(y, y_pred)
    assert isinstance(value, float) and grad.shape == y_pred.shape and grad.dtype == y_pred.dtype
    assert loss(y_true, y_pred) == pytest.approx(value, rel=1e-12)
    return value, grad


def theirs(fn, y_pred):
    p = leaf(y_pred)
    value = fn(p)
    value.backward()
    return value.item(), to_numpy(p.grad)


def check(loss, y_true, y_pred, torch_fn, rtol=RTOL):
    v, g = ours(loss, y_true, y_pred)
    tv, tg = theirs(torch_fn, y_pred)
    assert v == pytest.approx(tv, rel=rtol, abs=ATOL)
    np.testing.assert_allclose(g, tg, rtol=rtol, atol=ATOL)
    return v, g


def numerical_grad(f, x, eps=1e-6):
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[i] += eps
        down[i] -= eps
        g[i] = (f(up) - f(down)) / (2 * eps)
    return g


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(6, 4)) * 2
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    labels = np.array([0, 1, 2, 3, 1, 2])
    return logits, probs, labels, np.eye(4)[labels]


# ----- label smoothing ----------------------------------------------------------------------------
@pytest.mark.parametrize("s", [0.0, 0.1, 0.35])
def test_categorical_label_smoothing_from_logits_matches_torch(s, data):
    logits, _, labels, onehot = data
    loss = losses.CategoricalCrossentropy(from_logits=True, label_smoothing=s)
    target = leaf(labels)
    v, g = check(loss, onehot, logits, lambda z: F.cross_entropy(z, target, label_smoothing=s))
    # the fused path (a softmax layer's logits) gives the same
    fv, fg = loss.forward_logits(onehot, logits)
    assert fv == pytest.approx(v, rel=1e-14)
    np.testing.assert_allclose(fg, g, rtol=1e-14)


@pytest.mark.parametrize("s", [0.1, 0.35])
def test_categorical_label_smoothing_on_probabilities_matches_torch(s, data):
    _, probs, _, onehot = data
    smoothed = leaf(onehot * (1 - s) + s / 4, grad=False)
    check(
        losses.CategoricalCrossentropy(label_smoothing=s),
        onehot,
        probs,
        lambda p: -(smoothed * torch.log(p)).sum(1).mean(),
    )


@pytest.mark.parametrize("s", [0.1, 0.5])
def test_binary_label_smoothing_matches_torch(s):
    rng = np.random.default_rng(3)
    z = rng.normal(size=(5, 3)) * 2
    p = 1 / (1 + np.exp(-z))
    y = rng.integers(0, 2, size=(5, 3)).astype(np.float64)
    smoothed = leaf(y * (1 - s) + s / 2, grad=False)
    check(
        losses.BinaryCrossentropy(from_logits=True, label_smoothing=s),
        y,
        z,
        lambda q: F.binary_cross_entropy_with_logits(q, smoothed),
    )
    check(
        losses.BinaryCrossentropy(label_smoothing=s),
        y,
        p,
        lambda q: F.binary_cross_entropy(q, smoothed),
    )
    fused = losses.BinaryCrossentropy(label_smoothing=s).forward_logits(y, z)
    assert fused[0] == pytest.approx(ours(losses.BinaryCrossentropy(True, s), y, z)[0], rel=1e-14)


def test_label_smoothing_in_a_softmax_model_stays_stable():
    """Logits [1000, 0, -1000], label 2, smoothing 0.3: smoothed target (0.1, 0.1, 0.8) against
    log-probabilities (0, -1000, -2000) costs 0.1 * 1000 + 0.8 * 2000 = 1700, finite."""
    model = sn.Sequential([sn.layers.Dense(3, activation="softmax", input_shape=(1,))])
    model.compile(sn.optimizers.SGD(0.01), losses.CategoricalCrossentropy(label_smoothing=0.3))
    model.set_weights([np.array([[1000.0, 0.0, -1000.0]]), np.zeros(3)])
    loss = model.train_on_batch(np.ones((1, 1)), np.array([[0.0, 0.0, 1.0]]))
    assert loss == pytest.approx(1700.0, rel=1e-6)
    assert all(np.isfinite(w).all() for w in model.get_weights())
    # gradient p - t = (1, 0, 0) - (0.1, 0.1, 0.8) on the bias
    np.testing.assert_allclose(model.get_weights()[1], [-0.009, 0.001, 0.008], rtol=1e-5)


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), "0.1"])
def test_label_smoothing_checked(bad):
    with pytest.raises(ValueError, match=r"label_smoothing must be a finite number >= 0"):
        losses.CategoricalCrossentropy(label_smoothing=bad)
    with pytest.raises(ValueError, match=r"label_smoothing must be"):
        losses.BinaryCrossentropy(label_smoothing=bad)


# ----- Huber, KL divergence -----------------------------------------------------------------------
@pytest.mark.parametrize("delta", [0.5, 1.0, 3.0])
@pytest.mark.parametrize("shape", [(6, 1), (4, 3)])
def test_huber_matches_torch(delta, shape):
    rng = np.random.default_rng(4)
    pred, y = rng.normal(size=shape) * 2, rng.normal(size=shape)
    target = leaf(y, grad=False)
    check(losses.Huber(delta), y, pred, lambda q: F.huber_loss(q, target, delta=delta))
    assert losses.huber(y, pred, delta) == pytest.approx(
        ours(losses.Huber(delta=delta), y, pred)[0]
    )


def test_huber_takes_flat_targets_for_one_unit_and_checks_delta():
    pred = np.array([[0.5], [3.0]])
    assert losses.huber([0, 0], pred) == pytest.approx((0.125 + 2.5) / 2)
    for bad in (0, -1.0, float("inf")):
        with pytest.raises(ValueError, match=r"Huber: delta must be a finite number > 0"):
            losses.Huber(bad)


def test_kl_divergence_matches_torch(data):
    _, probs, _, _ = data
    t = np.random.default_rng(5).dirichlet(np.ones(4), size=6)
    target = leaf(t, grad=False)
    check(
        losses.KLDivergence(),
        t,
        probs,
        lambda p: F.kl_div(torch.log(p), target, reduction="batchmean"),
    )
    assert losses.kld(t, probs) == losses.kl_divergence(t, probs)


def test_kl_divergence_needs_distributions_shaped_like_outputs(data):
    _, probs, labels, _ = data
    with pytest.raises(ValueError, match=r"kl_divergence needs target distributions shaped"):
        losses.kl_divergence(labels, probs)


# ----- focal cross-entropy ------------------------------------------------------------------------
def focal_by_hand(y, p, alpha, gamma):
    p = np.clip(p / p.sum(1, keepdims=True), 1e-7, 1 - 1e-7)
    return float(np.mean(np.sum(-alpha * (1 - p) ** gamma * y * np.log(p), axis=1)))


@pytest.mark.parametrize(("alpha", "gamma", "s"), [(0.25, 2.0, 0.0), (0.5, 1.0, 0.2), (1, 0, 0)])
def test_focal_value_and_gradient(alpha, gamma, s, data):
    logits, probs, _, onehot = data
    loss = losses.CategoricalFocalCrossentropy(alpha=alpha, gamma=gamma, label_smoothing=s)
    smoothed = onehot * (1 - s) + s / 4
    value, grad = ours(loss, onehot, probs)
    assert value == pytest.approx(focal_by_hand(smoothed, probs, alpha, gamma), rel=1e-12)
    num = numerical_grad(lambda p: loss(onehot, p), probs)
    np.testing.assert_allclose(grad, num, rtol=1e-6, atol=1e-9)
    # from logits: the same value, the gradient w.r.t. the logits by finite differences
    by_logits = losses.CategoricalFocalCrossentropy(alpha, gamma, True, s)
    value_z, grad_z = ours(by_logits, onehot, logits)
    assert value_z == pytest.approx(value, rel=1e-12)
    np.testing.assert_allclose(
        grad_z, numerical_grad(lambda z: by_logits(onehot, z), logits), rtol=1e-6, atol=1e-9
    )
    assert loss.forward_logits(onehot, logits)[0] == pytest.approx(value, rel=1e-12)


def test_focal_with_gamma_0_and_alpha_1_is_cross_entropy_matching_torch(data):
    logits, _, labels, onehot = data
    target = leaf(labels)
    check(
        losses.CategoricalFocalCrossentropy(alpha=1.0, gamma=0.0, from_logits=True),
        onehot,
        logits,
        lambda z: F.cross_entropy(z, target),
    )


def test_focal_weighs_easy_examples_down():
    p = np.array([[0.9, 0.05, 0.05], [0.4, 0.3, 0.3]])
    y = np.eye(3)[[0, 0]]
    ce = [-math.log(0.9), -math.log(0.4)]
    focal = [focal_by_hand(y[i : i + 1], p[i : i + 1], 0.25, 2.0) for i in range(2)]
    assert focal[0] / ce[0] == pytest.approx(0.25 * 0.1**2)  # the easy example: 400x smaller
    assert focal[1] / ce[1] == pytest.approx(0.25 * 0.6**2)


def test_focal_in_a_softmax_model_uses_the_stable_fused_form():
    model = sn.Sequential([sn.layers.Dense(3, activation="softmax", input_shape=(1,))])
    model.compile(sn.optimizers.SGD(0.01), "categorical_focal_crossentropy")
    model.set_weights([np.array([[1000.0, 0.0, -1000.0]]), np.zeros(3)])
    loss = model.train_on_batch(np.ones((1, 1)), np.array([[0.0, 0.0, 1.0]]))
    assert loss == pytest.approx(0.25 * 2000.0, rel=1e-6)  # alpha (1 - 0)^2 * 2000
    assert all(np.isfinite(w).all() for w in model.get_weights())


@pytest.mark.parametrize(("kw", "what"), [({"alpha": -1}, "alpha"), ({"gamma": -0.5}, "gamma")])
def test_focal_arguments_checked(kw, what):
    with pytest.raises(ValueError, match=rf"CategoricalFocalCrossentropy: {what} must be"):
        losses.CategoricalFocalCrossentropy(**kw)


# ----- names, configs, model files ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("huber", losses.Huber),
        ("huber_loss", losses.Huber),
        ("kld", losses.KLDivergence),
        ("kl_divergence", losses.KLDivergence),
        ("kullback_leibler_divergence", losses.KLDivergence),
        ("categorical_focal_crossentropy", losses.CategoricalFocalCrossentropy),
        ("Huber", losses.Huber),
    ],
)
def test_names(name, cls):
    assert type(losses.get(name)) is cls


@pytest.mark.parametrize(
    "loss",
    [
        losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.2),
        losses.BinaryCrossentropy(label_smoothing=0.05),
        losses.Huber(delta=0.7),
        losses.KLDivergence(),
        losses.CategoricalFocalCrossentropy(alpha=0.4, gamma=1.5, label_smoothing=0.1),
    ],
    ids=lambda loss: loss.name,
)
def test_serialize_round_trip(loss):
    back = losses.deserialize(losses.serialize(loss))
    assert type(back) is type(loss) and back.get_config() == loss.get_config()


def test_old_configs_without_label_smoothing_still_load():
    back = losses.deserialize({"class_name": "categorical_crossentropy", "config": {}})
    assert back.label_smoothing == 0.0
    back = losses.deserialize(
        {"class_name": "binary_crossentropy", "config": {"from_logits": True}}
    )
    assert back.from_logits and back.label_smoothing == 0.0


def test_model_file_keeps_the_loss_settings(tmp_path):
    sn.utils.set_random_seed(0)
    model = sn.Sequential([sn.layers.Dense(3, activation="softmax", input_shape=(2,))])
    model.compile("sgd", losses.CategoricalFocalCrossentropy(alpha=0.4, gamma=1.5))
    x, y = np.random.default_rng(0).normal(size=(8, 2)), np.eye(3)[np.arange(8) % 3]
    model.fit(x, y, epochs=1, verbose=0)
    model.save(tmp_path / "m.slidenet")
    loaded = sn.load_model(tmp_path / "m.slidenet")
    assert type(loaded.loss) is losses.CategoricalFocalCrossentropy
    assert (loaded.loss.alpha, loaded.loss.gamma) == (0.4, 1.5)
    assert loaded.evaluate(x, y, verbose=0) == pytest.approx(model.evaluate(x, y, verbose=0))
