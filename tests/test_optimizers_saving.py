"""Model files keep an optimizer's settings, schedule and state: a run saved, loaded and trained
further equals the run that was never interrupted, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

import slidenet as keras
from slidenet import optimizers
from slidenet.optimizers import schedules


def data():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(48, 6)).astype(np.float32)
    y = rng.integers(0, 3, size=48)
    return x, y


def new_model(optimizer):
    keras.utils.set_random_seed(5)
    model = keras.Sequential(
        [
            keras.layers.Dense(8, activation="relu", input_shape=(6,)),
            keras.layers.Dropout(0.25),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    model.compile(optimizer, "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def adamw_cosine():
    # 48 examples / batch 16 = 3 steps per epoch: the warm-up ends within epoch 2
    schedule = schedules.CosineDecay(
        0.0, decay_steps=9, alpha=0.1, warmup_target=0.05, warmup_steps=4
    )
    return optimizers.AdamW(schedule, weight_decay=0.01, global_clipnorm=1.0)


def assert_same_run(a, b):
    for u, v in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(u, v)
    for u, v in zip(a.optimizer.variables(), b.optimizer.variables(), strict=True):
        np.testing.assert_array_equal(u, v)
    assert a.optimizer.iterations == b.optimizer.iterations
    assert a.optimizer.learning_rate == b.optimizer.learning_rate
    assert a.optimizer.get_config() == b.optimizer.get_config()
    assert a.history.history["loss"][-2:] == b.history.history["loss"][-2:]


def test_adamw_with_cosine_decay_resumes_bit_for_bit(tmp_path):
    x, y = data()
    straight = new_model(adamw_cosine())
    straight.fit(x, y, batch_size=16, epochs=5, verbose=0)

    first = new_model(adamw_cosine())
    first.fit(x, y, batch_size=16, epochs=2, verbose=0)
    first.save(tmp_path / "run.slidenet")
    resumed = keras.load_model(tmp_path / "run.slidenet")
    assert isinstance(resumed.optimizer, optimizers.AdamW)
    assert resumed.optimizer.get_config() == adamw_cosine().get_config()  # the schedule too
    assert resumed.optimizer.iterations == 6
    resumed.fit(x, y, batch_size=16, epochs=5, initial_epoch=2, verbose=0)

    assert_same_run(straight, resumed)
    # the schedule ran to its end: the rate is alpha * warmup_target
    assert straight.optimizer.learning_rate == pytest.approx(0.005)
    assert straight.history.history["learning_rate"][-1] == pytest.approx(0.005)


@pytest.mark.parametrize(
    "make",
    [
        lambda: optimizers.SGD(0.05, momentum=0.9, weight_decay=0.01, clipvalue=0.5),
        lambda: optimizers.Adam(0.01, amsgrad=True, clipnorm=1.0),
        lambda: optimizers.Adamax(schedules.ExponentialDecay(0.01, 2, 0.9)),
        lambda: optimizers.Nadam(0.01, weight_decay=0.05),
        lambda: optimizers.RMSprop(0.01, momentum=0.5, centered=True),
        lambda: optimizers.Adagrad(schedules.PiecewiseConstantDecay([4], [0.1, 0.05])),
        lambda: optimizers.Adadelta(1.0, weight_decay=0.01),
        lambda: optimizers.Lion(schedules.InverseTimeDecay(0.003, 3, 0.5), weight_decay=0.1),
        lambda: optimizers.SGD(schedules.PolynomialDecay(0.1, 10, cycle=True)),
    ],
    ids=["sgd", "amsgrad", "adamax", "nadam", "rmsprop", "adagrad", "adadelta", "lion", "poly"],
)
def test_every_optimizer_resumes_bit_for_bit(tmp_path, make):
    x, y = data()
    straight = new_model(make())
    straight.fit(x, y, batch_size=16, epochs=4, verbose=0)
    first = new_model(make())
    first.fit(x, y, batch_size=16, epochs=2, verbose=0)
    first.save(tmp_path / "run.slidenet")
    resumed = keras.load_model(tmp_path / "run.slidenet")
    assert type(resumed.optimizer) is type(straight.optimizer)
    resumed.fit(x, y, batch_size=16, epochs=4, initial_epoch=2, verbose=0)
    assert_same_run(straight, resumed)
