"""The training step split over threads (models/sharded_step.py) equals the one-thread step."""

from __future__ import annotations

import numpy as np
import pytest

import slidenet as keras
from slidenet.models import sharded_step

layers = keras.layers


def _net(dtype="float32", extra=()):
    keras.utils.set_random_seed(3)
    model = keras.Sequential(
        [
            layers.Input((12, 12, 1)),
            layers.Conv2D(4, 3, padding="same", activation="relu", dtype=dtype),
            layers.MaxPooling2D(2, dtype=dtype),
            layers.Conv2D(6, 3, activation="relu", dtype=dtype),
            *extra,
            layers.Flatten(dtype=dtype),
            layers.Dense(5, activation="softmax", dtype=dtype),
        ]
    )
    model.compile(keras.optimizers.SGD(0.05), "sparse_categorical_crossentropy", ["accuracy"])
    return model


def _data(n=40, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 12, 12, 1)).astype(np.float32), rng.integers(0, 5, n)


def _step(model, x, y, threads, monkeypatch):
    monkeypatch.setenv("SLIDENET_NUM_THREADS", str(threads))
    result = model.train_on_batch(x, y)
    return result, [[g.copy() for g in layer.grads] for layer in model.layers]


@pytest.mark.parametrize(("dtype", "rtol"), [("float32", 2e-5), ("float64", 1e-12)])
@pytest.mark.parametrize("threads", [2, 3])
def test_split_step_gives_the_one_thread_gradients_loss_and_metrics(
    dtype, rtol, threads, monkeypatch
):
    x, y = _data()
    one, many = _net(dtype), _net(dtype)
    assert sharded_step.plan(one, len(x)) >= 2  # the default uses every core (2 in CI)
    (loss1, acc1), grads1 = _step(one, x, y, 1, monkeypatch)
    (loss_n, acc_n), grads_n = _step(many, x, y, threads, monkeypatch)
    assert sharded_step.plan(many, len(x)) == threads
    assert loss_n == pytest.approx(loss1, rel=rtol)
    assert acc_n == acc1
    assert sum(len(g) for g in grads1) == 6
    for g1, gn in zip(grads1, grads_n, strict=True):
        for a, b in zip(g1, gn, strict=True):
            np.testing.assert_allclose(b, a, rtol=rtol, atol=rtol * np.abs(a).max())
    for w1, wn in zip(one.get_weights(), many.get_weights(), strict=True):
        np.testing.assert_allclose(wn, w1, rtol=rtol, atol=1e-7)


def test_uneven_shards_are_weighted_by_their_size(monkeypatch):
    x, y = _data(n=37)  # 3 shards of 12, 12, 13 examples
    one, many = _net("float64"), _net("float64")
    _, grads1 = _step(one, x, y, 1, monkeypatch)
    _, grads3 = _step(many, x, y, 3, monkeypatch)
    assert sharded_step.shard_bounds(37, 3) == [0, 12, 24, 37]
    for g1, g3 in zip(grads1, grads3, strict=True):
        for a, b in zip(g1, g3, strict=True):
            np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-14)


def test_fit_with_threads_learns_as_with_one(monkeypatch):
    x, y = _data(n=64)
    histories = []
    for threads in (1, 2):
        monkeypatch.setenv("SLIDENET_NUM_THREADS", str(threads))
        model = _net("float64")
        histories.append(model.fit(x, y, batch_size=32, epochs=3, verbose=0, shuffle=False))
    np.testing.assert_allclose(
        histories[1].history["loss"], histories[0].history["loss"], rtol=1e-10
    )


def test_models_with_batch_statistics_or_random_draws_keep_the_one_thread_step(monkeypatch):
    monkeypatch.setenv("SLIDENET_NUM_THREADS", "2")
    x, _ = _data()
    assert sharded_step.plan(_net(), len(x)) == 2
    assert sharded_step.plan(_net(extra=[layers.BatchNormalization()]), len(x)) == 1
    assert sharded_step.plan(_net(extra=[layers.Dropout(0.5)]), len(x)) == 1
    assert sharded_step.plan(_net(), 2 * sharded_step.MIN_SHARD - 1) == 1  # too few examples
    monkeypatch.setenv("SLIDENET_NUM_THREADS", "1")
    assert sharded_step.plan(_net(), len(x)) == 1


def test_a_non_finite_loss_in_a_shard_still_raises_and_leaves_the_weights(monkeypatch):
    monkeypatch.setenv("SLIDENET_NUM_THREADS", "2")
    x, y = _data()
    model = _net()
    before = [w.copy() for w in model.get_weights()]
    x[30] = 3e38  # only the second shard overflows
    with pytest.raises(FloatingPointError, match="loss is"):
        model.train_on_batch(x, y)
    for a, b in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("extra", [(), (layers.BatchNormalization(), layers.Dropout(0.3))])
def test_predict_in_threads_equals_one_thread(extra, monkeypatch):
    x, _ = _data(n=45)
    model = _net(extra=list(extra))
    monkeypatch.setenv("SLIDENET_NUM_THREADS", "1")
    one = model.predict(x, batch_size=8)
    monkeypatch.setenv("SLIDENET_NUM_THREADS", "2")
    assert sharded_step.predict_in_threads(model, x, 8, model._batch) is not None
    np.testing.assert_allclose(model.predict(x, batch_size=8), one, rtol=1e-6, atol=1e-7)
