"""A layer called twice in one pass keeps both calls' caches intact.

Conv2D reuses its im2col buffer from step to step (a fresh 60 MB array per step costs as much as
the copy); a second call in the same pass must get its own, or the first call's backward reads the
second call's columns. Checked by finite differences in float64 for a shared Conv2D in a
functional graph, in a subclassed model and inside a shared Sequential.
"""

import numpy as np
import pytest

import slidenet as keras
from slidenet import layers as L

F64 = "float64"


def numeric_kernel_grad(loss, w, eps=1e-6):
    num = np.zeros_like(w)
    for i in np.ndindex(w.shape):
        old = w[i]
        w[i] = old + eps
        up = loss()
        w[i] = old - eps
        down = loss()
        w[i] = old
        num[i] = (up - down) / (2 * eps)
    return num


def functional_shared():
    conv = L.Conv2D(2, 3, activation="tanh", dtype=F64)
    a, b = keras.Input((5, 5, 1), dtype=F64), keras.Input((5, 5, 1), dtype=F64)
    out = L.Flatten(dtype=F64)(L.Multiply(dtype=F64)([conv(a), conv(b)]))
    return keras.Model([a, b], out), conv


def sequential_shared():
    encoder = keras.Sequential(
        [L.Input((5, 5, 1)), L.Conv2D(2, 3, dtype=F64), L.Flatten(dtype=F64)]
    )
    a, b = keras.Input((5, 5, 1), dtype=F64), keras.Input((5, 5, 1), dtype=F64)
    out = L.Multiply(dtype=F64)([encoder(a), encoder(b)])
    return keras.Model([a, b], out), encoder.layers[0]


class Twice(keras.Model):
    def __init__(self):
        super().__init__(dtype=F64)
        self.conv = L.Conv2D(2, 3, activation="tanh", dtype=F64)
        self.mul = L.Multiply(dtype=F64)
        self.flat = L.Flatten(dtype=F64)

    def call(self, inputs, training=False):
        a, b = inputs
        return self.flat(self.mul([self.conv(a), self.conv(b)]))


def subclassed_shared():
    model = Twice()
    model.build([(None, 5, 5, 1), (None, 5, 5, 1)])
    return model, model.conv


@pytest.mark.parametrize("build", [functional_shared, sequential_shared, subclassed_shared])
def test_shared_conv_gradient_matches_finite_differences(build):
    keras.utils.set_random_seed(0)
    model, conv = build()
    rng = np.random.default_rng(1)
    xs = [rng.normal(size=(2, 5, 5, 1)), rng.normal(size=(2, 5, 5, 1))]
    y, state = model.forward_with_cache(xs)
    r = rng.normal(size=y.shape)
    model.backward_with_cache(r, state)
    analytic = conv.grads[0].copy()

    def loss():
        return float(np.sum(r * model.forward_with_cache(xs)[0]))

    numeric = numeric_kernel_grad(loss, conv.kernel)
    assert np.max(np.abs(analytic - numeric)) < 1e-7 * max(1.0, np.max(np.abs(numeric)))
