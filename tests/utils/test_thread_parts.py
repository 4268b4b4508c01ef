"""Elementwise work split between threads gives the same bits as one thread."""

import numpy as np
import pytest

import slidenet as keras
from slidenet.ops import pool
from slidenet.utils import threads


def _run(monkeypatch, n_threads, fn):
    monkeypatch.setenv("SLIDENET_NUM_THREADS", str(n_threads))
    monkeypatch.setattr(threads, "MIN_PARALLEL_SIZE", 1)  # split even these small arrays
    return fn()


@pytest.mark.parametrize("kind", ["max", "avg", "sum"])
@pytest.mark.parametrize("stride", [None, 1])
def test_pooling_in_threads_is_bit_identical(monkeypatch, kind, stride):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 9, 8, 3)).astype(np.float32)
    x[0, :2, :2, 0] = 1.0  # ties: the first element in window order still wins

    def run():
        y, cache = pool.pool2d_forward(x, 2, stride, "same", kind)
        return y, pool.pool2d_backward(np.ones_like(y) + y, cache)

    serial, parallel = _run(monkeypatch, 1, run), _run(monkeypatch, 3, run)
    for a, b in zip(serial, parallel, strict=True):
        np.testing.assert_array_equal(a, b)


def test_adam_in_threads_is_bit_identical(monkeypatch):
    rng = np.random.default_rng(1)
    grads = [rng.standard_normal((1001, 7)).astype(np.float32) for _ in range(3)]

    def run():
        weights = [np.ones((1001, 7), np.float32)]
        opt = keras.optimizers.Adam(0.01)
        for g in grads:
            opt.apply(weights, [g])
        return weights[0], opt.slots["m"][0], opt.slots["v"][0]

    for a, b in zip(_run(monkeypatch, 1, run), _run(monkeypatch, 4, run), strict=True):
        np.testing.assert_array_equal(a, b)


def test_thread_count_follows_the_environment(monkeypatch):
    monkeypatch.setenv("SLIDENET_NUM_THREADS", "3")
    assert threads.num_threads() == 3
    monkeypatch.delenv("SLIDENET_NUM_THREADS")
    assert threads.num_threads() == 1  # off unless asked for
    seen = []
    threads.run_in_parts(lambda i, j: seen.append((i, j)), 10, 10**9)
    assert seen == [(0, 10)]
