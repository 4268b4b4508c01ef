"""Losses against torch (value and gradient w.r.t. the predictions), the fused softmax/sigmoid +
cross-entropy path on extreme logits, target checks, and the metrics on hand-made examples. torch
computes in float64 on tensors from tests/torch_oracle.py."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import slidenet as sn
from slidenet import losses, metrics
from torch_oracle import leaf, to_numpy

RTOL, ATOL = 1e-10, 1e-12


def ours(loss, y_true, y_pred):
    """(value, gradient) from a Loss object, targets validated as fit does."""
    y = loss.check_targets(y_true, y_pred.shape, "test")
    value, grad = loss.forward(y, y_pred)
    assert isinstance(value, float)
    assert grad.shape == y_pred.shape and grad.dtype == y_pred.dtype
    # the public __call__ gives the same value
    assert loss(y_true, y_pred) == pytest.approx(value, rel=1e-12)
    return value, grad


def theirs(fn, y_pred):
    p = leaf(y_pred)
    value = fn(p)
    value.backward()
    return value.item(), to_numpy(p.grad)


def check(loss, y_true, y_pred, torch_fn):
    v, g = ours(loss, y_true, y_pred)
    tv, tg = theirs(torch_fn, y_pred)
    assert v == pytest.approx(tv, rel=RTOL, abs=ATOL)
    np.testing.assert_allclose(g, tg, rtol=RTOL, atol=ATOL)
    return v, g


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(6, 4)) * 2
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    labels = rng.integers(0, 4, size=6)
    labels[:4] = [0, 1, 2, 3]
    onehot = np.eye(4)[labels]
    return logits, probs, labels, onehot


def test_sparse_ce_on_probabilities(data):
    _, probs, labels, _ = data
    check(
        losses.SparseCategoricalCrossentropy(),
        labels,
        probs,
        lambda p: F.nll_loss(torch.log(p), leaf(labels, grad=False)),
    )


def test_sparse_ce_from_logits(data):
    logits, _, labels, _ = data
    check(
        losses.SparseCategoricalCrossentropy(from_logits=True),
        labels,
        logits,
        lambda z: F.cross_entropy(z, leaf(labels, grad=False)),
    )


def test_sparse_ce_accepts_column_and_float_labels(data):
    _, probs, labels, _ = data
    base = losses.sparse_categorical_crossentropy(labels, probs)
    assert losses.sparse_categorical_crossentropy(labels[:, None], probs) == base
    assert losses.sparse_categorical_crossentropy(labels.astype(np.float32), probs) == base


def test_categorical_ce_on_probabilities(data):
    _, probs, _, onehot = data
    check(
        losses.CategoricalCrossentropy(),
        onehot,
        probs,
        lambda p: -(leaf(onehot, grad=False) * torch.log(p)).sum(1).mean(),
    )


def test_categorical_ce_from_logits_one_hot_and_soft_targets(data):
    logits, _, _, onehot = data
    check(
        losses.CategoricalCrossentropy(from_logits=True),
        onehot,
        logits,
        lambda z: F.cross_entropy(z, leaf(onehot, grad=False)),
    )
    soft = np.random.default_rng(1).dirichlet(np.ones(4), size=6)
    check(
        losses.CategoricalCrossentropy(from_logits=True),
        soft,
        logits,
        lambda z: F.cross_entropy(z, leaf(soft, grad=False)),
    )


def test_sparse_and_categorical_agree(data):
    logits, probs, labels, onehot = data
    for from_logits, pred in ((False, probs), (True, logits)):
        a = ours(losses.SparseCategoricalCrossentropy(from_logits), labels, pred)
        b = ours(losses.CategoricalCrossentropy(from_logits), onehot, pred)
        assert a[0] == pytest.approx(b[0], rel=1e-12)
        np.testing.assert_allclose(a[1], b[1], rtol=1e-12)


@pytest.mark.parametrize("shape", [(6, 1), (4, 3)])
def test_binary_ce_on_probabilities(shape):
    rng = np.random.default_rng(2)
    p = rng.uniform(0.05, 0.95, size=shape)
    y = rng.integers(0, 2, size=shape).astype(np.float64)
    check(
        losses.BinaryCrossentropy(), y, p, lambda q: F.binary_cross_entropy(q, leaf(y, grad=False))
    )


@pytest.mark.parametrize("shape", [(6, 1), (4, 3)])
def test_binary_ce_from_logits(shape):
    rng = np.random.default_rng(3)
    z = rng.normal(size=shape) * 3
    y = rng.integers(0, 2, size=shape).astype(np.float64)
    check(
        losses.BinaryCrossentropy(from_logits=True),
        y,
        z,
        lambda q: F.binary_cross_entropy_with_logits(q, leaf(y, grad=False)),
    )


def test_binary_ce_takes_flat_targets_for_one_unit():
    p = np.array([[0.9], [0.2], [0.6]])
    y = np.array([1, 0, 1])
    want = -np.mean(np.log([0.9, 0.8, 0.6]))
    assert losses.binary_crossentropy(y, p) == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("shape", [(5,), (5, 1), (4, 3), (2, 3, 2)])
def test_mse(shape):
    rng = np.random.default_rng(4)
    pred, y = rng.normal(size=shape), rng.normal(size=shape)
    check(losses.MeanSquaredError(), y, pred, lambda q: F.mse_loss(q, leaf(y, grad=False)))
    assert losses.get("mse").name == "mean_squared_error"


def test_probability_losses_clip_like_keras():
    """A probability of exactly 0 for the true class costs -log(1e-7), not inf."""
    p = np.array([[1.0, 0.0]])
    assert losses.sparse_categorical_crossentropy([1], p) == pytest.approx(
        -math.log(1e-7), rel=1e-6
    )
    assert losses.binary_crossentropy([[1.0]], np.array([[0.0]])) == pytest.approx(
        -math.log(1e-7), rel=1e-6
    )


def test_float32_losses_return_float32_gradients(data):
    logits, probs, labels, onehot = data
    for loss, y, pred in [
        (losses.SparseCategoricalCrossentropy(), labels, probs),
        (losses.SparseCategoricalCrossentropy(from_logits=True), labels, logits),
        (losses.CategoricalCrossentropy(), onehot, probs),
        (losses.BinaryCrossentropy(), (onehot > 0).astype(int), probs),
        (losses.BinaryCrossentropy(from_logits=True), onehot, logits),
        (losses.MeanSquaredError(), onehot, probs),
    ]:
        v64, g64 = ours(loss, y, pred)
        v32, g32 = ours(loss, y, pred.astype(np.float32))
        assert g32.dtype == np.float32
        assert v32 == pytest.approx(v64, rel=1e-5)
        np.testing.assert_allclose(g32, g64, rtol=1e-4, atol=1e-6)


# ----- the fused, stable path ---------------------------------------------------------------------
EXTREME = np.array([[1000.0, 0.0, -1000.0], [-1000.0, 1000.0, 0.0]])


@pytest.mark.parametrize("label", [0, 1, 2])
def test_fused_softmax_ce_is_stable_for_extreme_logits(label):
    loss = losses.SparseCategoricalCrossentropy()
    y = np.array([label, label])
    value, grad = loss.forward_logits(y, EXTREME)
    assert math.isfinite(value) and np.isfinite(grad).all()
    tv, tg = theirs(lambda z: F.cross_entropy(z, leaf(y, grad=False)), EXTREME)
    assert value == pytest.approx(tv, rel=1e-12)
    np.testing.assert_allclose(grad, tg, rtol=1e-12, atol=1e-15)
    # also through from_logits=True, and in float32
    assert losses.SparseCategoricalCrossentropy(True)(y, EXTREME) == pytest.approx(tv, rel=1e-12)
    v32, g32 = loss.forward_logits(y, EXTREME.astype(np.float32))
    assert math.isfinite(v32) and np.isfinite(g32).all()


def test_fused_sigmoid_bce_is_stable_for_extreme_logits():
    z = np.array([[1000.0], [-1000.0], [30.0], [-745.0]])
    y = np.array([[0.0], [1.0], [1.0], [1.0]])
    value, grad = losses.BinaryCrossentropy().forward_logits(y, z)
    tv, tg = theirs(lambda q: F.binary_cross_entropy_with_logits(q, leaf(y, grad=False)), z)
    assert math.isfinite(value) and np.isfinite(grad).all()
    assert value == pytest.approx(tv, rel=1e-12)
    np.testing.assert_allclose(grad, tg, rtol=1e-12, atol=1e-15)


def test_model_uses_the_fused_path_for_softmax_outputs():
    """Dense(3, softmax) whose logits are [1000, 0, -1000]: a finite loss of 2000 for label 2 (the
    clipped probability path would report -log(1e-7) = 16.1), and finite weights after a step."""
    model = sn.Sequential([sn.layers.Dense(3, activation="softmax", input_shape=(1,))])
    model.compile(optimizer=sn.optimizers.SGD(0.01), loss="sparse_categorical_crossentropy")
    model.set_weights([np.array([[1000.0, 0.0, -1000.0]]), np.zeros(3)])
    loss = model.train_on_batch(np.ones((1, 1)), np.array([2]))
    assert loss == pytest.approx(2000.0, rel=1e-6)
    assert all(np.isfinite(w).all() for w in model.get_weights())
    kernel, bias = model.get_weights()
    # gradient p - onehot = (1, 0, -1) for both kernel (x = 1) and bias: they move by -lr * that
    np.testing.assert_allclose(kernel, [[999.99, 0.0, -999.99]], rtol=0, atol=2e-4)
    np.testing.assert_allclose(bias, [-0.01, 0.0, 0.01], rtol=1e-5)


# ----- target checks -----------------------------------------------------------------------------
def test_labels_beyond_the_units_are_refused(data):
    _, probs, _, _ = data
    with pytest.raises(
        ValueError, match=r"labels range over 0\.\.4 but the last layer has 4 units"
    ):
        losses.sparse_categorical_crossentropy([0, 1, 2, 3, 4, 0], probs)
    with pytest.raises(ValueError, match=r"-1\.\.3 .* 4 units .*fix the labels"):
        losses.sparse_categorical_crossentropy([-1, 1, 2, 3, 0, 0], probs)


def test_labels_beyond_the_units_in_fit():
    model = sn.Sequential([sn.layers.Dense(3, activation="softmax", input_shape=(2,))])
    model.compile("sgd", loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match=r"fit: labels range over 0\.\.9 .*3 units.*Dense\(10\)"):
        model.fit(np.zeros((4, 2)), np.array([0, 1, 9, 2]), verbose=0)


def test_non_integer_labels_are_refused(data):
    _, probs, _, _ = data
    with pytest.raises(ValueError, match="whole numbers"):
        losses.sparse_categorical_crossentropy([0, 1.5, 2, 3, 0, 0], probs)


def test_one_hot_targets_for_sparse_loss_suggest_categorical(data):
    _, probs, _, onehot = data
    with pytest.raises(ValueError, match=r"integer labels \(N,\).*categorical_crossentropy"):
        losses.sparse_categorical_crossentropy(onehot, probs)


def test_integer_labels_for_categorical_loss_suggest_sparse(data):
    _, probs, labels, _ = data
    with pytest.raises(ValueError, match=r"one-hot targets \(N, 4\).*sparse_categorical"):
        losses.categorical_crossentropy(labels, probs)


def test_binary_targets_checked():
    with pytest.raises(ValueError, match=r"binary targets must lie in \[0, 1\]"):
        losses.binary_crossentropy([0, 2], np.array([[0.5], [0.5]]))
    with pytest.raises(ValueError, match="one target per output"):
        losses.binary_crossentropy([0, 1, 1], np.array([[0.5], [0.5]]))


def test_targets_with_nan_or_text_are_refused(data):
    _, probs, _, onehot = data
    bad = onehot.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or Inf"):
        losses.categorical_crossentropy(bad, probs)
    with pytest.raises(TypeError, match="expected numbers"):
        losses.mean_squared_error(np.array(["a", "b"]), np.zeros(2))


def test_loss_names():
    for name, cls in [
        ("sparse_categorical_crossentropy", losses.SparseCategoricalCrossentropy),
        ("categorical_crossentropy", losses.CategoricalCrossentropy),
        ("binary_crossentropy", losses.BinaryCrossentropy),
        ("mean_squared_error", losses.MeanSquaredError),
    ]:
        loss = losses.get(name)
        assert type(loss) is cls and loss.name == name
        assert type(losses.deserialize(losses.serialize(cls(from_logits=True)))) is cls
    assert losses.deserialize(
        losses.serialize(losses.BinaryCrossentropy(from_logits=True))
    ).from_logits
    with pytest.raises(ValueError, match=r"Unknown loss 'mean_squared_eror'\. Did you mean"):
        losses.get("mean_squared_eror")


# ----- metrics -----------------------------------------------------------------------------------
PRED = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.2, 0.5, 0.3], [0.3, 0.3, 0.4]])
LABELS = np.array([0, 1, 1, 2])  # right, wrong, right, right


def test_sparse_categorical_accuracy():
    assert metrics.sparse_categorical_accuracy(LABELS, PRED) == 0.75
    assert metrics.sparse_categorical_accuracy(LABELS[:, None], PRED) == 0.75
    assert metrics.sparse_categorical_accuracy(np.array([2, 2, 2, 0]), PRED) == 0.25


def test_categorical_accuracy():
    assert metrics.categorical_accuracy(np.eye(3)[LABELS], PRED) == 0.75
    assert metrics.categorical_accuracy(np.eye(3)[[1, 0, 0, 1]], PRED) == 0.0


def test_binary_accuracy():
    y_pred = np.array([[0.2], [0.7], [0.5], [0.9], [0.51]])
    y_true = np.array([0, 1, 1, 0, 1])
    # right, right, wrong (0.5 is not above the threshold), wrong, right
    assert metrics.binary_accuracy(y_true, y_pred) == pytest.approx(0.6)
    assert metrics.binary_accuracy(y_true, y_pred, threshold=0.8) == pytest.approx(0.2)


@pytest.mark.parametrize(
    "loss, output_shape, want",
    [
        ("sparse_categorical_crossentropy", (None, 10), metrics.sparse_categorical_accuracy),
        ("categorical_crossentropy", (None, 10), metrics.categorical_accuracy),
        ("binary_crossentropy", (None, 1), metrics.binary_accuracy),
        ("binary_crossentropy", (None, 5), metrics.binary_accuracy),
        ("mean_squared_error", (None, 1), metrics.binary_accuracy),
    ],
)
@pytest.mark.parametrize("name", ["accuracy", "acc", "Accuracy"])
def test_accuracy_resolution(name, loss, output_shape, want):
    log_name, fn = metrics.resolve(name, loss, output_shape)
    assert log_name == name.lower()  # Keras 3 logs metrics=["acc"] as "acc"
    assert fn is want


def test_accuracy_with_mse_follows_the_targets_shape():
    _, fn = metrics.resolve("accuracy", "mean_squared_error", (None, 3))
    assert fn(np.eye(3)[LABELS], PRED) == 0.75  # one-hot targets
    assert fn(LABELS, PRED) == 0.75  # integer labels


def test_accuracy_resolution_in_a_model():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 4)).astype(np.float32)
    labels = np.arange(12) % 3
    for loss, y in [
        ("sparse_categorical_crossentropy", labels),
        ("categorical_crossentropy", np.eye(3)[labels]),
        ("mean_squared_error", np.eye(3)[labels]),
    ]:
        model = sn.Sequential([sn.layers.Dense(3, activation="softmax", input_shape=(4,))])
        model.compile("sgd", loss=loss, metrics=["accuracy"])
        _, acc = model.evaluate(x, y, verbose=0)
        want = np.mean(np.argmax(model.predict(x), axis=1) == labels)
        assert acc == pytest.approx(want)
    model = sn.Sequential([sn.layers.Dense(1, activation="sigmoid", input_shape=(4,))])
    model.compile("sgd", loss="binary_crossentropy", metrics=["accuracy"])
    yb = (x[:, 0] > 0).astype(np.float32)
    _, acc = model.evaluate(x, yb, verbose=0)
    assert acc == pytest.approx(np.mean((model.predict(x)[:, 0] > 0.5) == (yb > 0.5)))


def test_explicit_metric_names_and_functions():
    assert metrics.resolve("binary_accuracy", "mean_squared_error", (None, 3)) == (
        "binary_accuracy",
        metrics.binary_accuracy,
    )

    def my_metric(y_true, y_pred):
        return 1.0

    assert metrics.resolve(my_metric, "mse", (None, 1)) == ("my_metric", my_metric)


def test_unknown_metric_suggests_accuracy():
    with pytest.raises(ValueError, match=r"Unknown metric 'acuracy'\. Did you mean 'accuracy'\?"):
        metrics.resolve("acuracy", "mse", (None, 1))
