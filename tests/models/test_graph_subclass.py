"""Subclassing: ``class Net(keras.Model)`` with ``call``, composite layers, custom layers.

- A subclassed model trains with fit (its layer calls are recorded and replayed backwards) and
  gives the same losses and weights as the functional model with the same weights.
- A ``layers.Layer`` subclass whose ``call`` uses only layers needs no backward: gradcheck passes,
  and it trains inside functional and subclassed models.
- A layer with new math defines ``backward`` (and its weights with ``add_weight``): gradcheck.
- A layer with new math and no backward fails at its first backward with a clear message.
"""

from __future__ import annotations

import numpy as np
import pytest

import slidenet as keras
from slidenet import layers
from slidenet.utils import gradcheck

RNG = np.random.default_rng(0)
X = RNG.standard_normal((24, 6, 6, 1))
Y = (X[:, :3].mean(axis=(1, 2, 3)) > X[:, 3:].mean(axis=(1, 2, 3))).astype(int)  # top vs bottom


class Net(keras.Model):
    def __init__(self, dtype="float64", **kwargs):
        super().__init__(**kwargs)
        self.conv = layers.Conv2D(4, 3, padding="same", dtype=dtype)
        self.bn = layers.BatchNormalization(dtype=dtype)
        self.relu = layers.ReLU(dtype=dtype)
        self.pool = layers.MaxPooling2D(2, dtype=dtype)
        self.flat = layers.Flatten(dtype=dtype)
        self.head = layers.Dense(2, activation="softmax", dtype=dtype)

    def call(self, inputs, training=False):
        h = self.relu(self.bn(self.conv(inputs), training=training))
        return self.head(self.flat(self.pool(h)))


def functional_twin(net, dtype="float64"):
    """The same architecture as a functional model, with net's weights."""
    x = keras.Input((6, 6, 1), dtype=dtype)
    h = layers.Conv2D(4, 3, padding="same", dtype=dtype)(x)
    h = layers.ReLU(dtype=dtype)(layers.BatchNormalization(dtype=dtype)(h))
    h = layers.Flatten(dtype=dtype)(layers.MaxPooling2D(2, dtype=dtype)(h))
    model = keras.Model(x, layers.Dense(2, activation="softmax", dtype=dtype)(h))
    twins = [layer for layer in model.layers if not isinstance(layer, layers.InputLayer)]
    for ours, twin in zip(net.layers, twins, strict=True):
        assert type(ours) is type(twin)
        twin.set_weights(ours.get_weights())
    return model


def test_subclassed_model_trains_like_its_functional_twin():
    keras.utils.set_random_seed(1)
    net = Net()
    net.build((None, 6, 6, 1))
    twin = functional_twin(net)
    for model in (net, twin):
        model.compile(
            keras.optimizers.SGD(0.1, momentum=0.9),
            "sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
    runs = [m.fit(X, Y, batch_size=8, epochs=4, shuffle=False, verbose=0) for m in (net, twin)]
    losses = runs[0].history["loss"]
    assert losses[-1] < 0.8 * losses[0], losses
    np.testing.assert_allclose(losses, runs[1].history["loss"], rtol=1e-10)
    for a, b in zip(net.get_weights(), twin.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(net.predict(X), twin.predict(X), rtol=1e-9, atol=1e-12)
    assert [layer.name for layer in net.layers][0] == net.conv.name
    assert net.count_params() == twin.count_params() == 4 * 10 + 4 * 4 + 36 * 2 + 2


def test_subclassed_model_backward_matches_the_twin():
    net = Net()
    x = X[:5]
    y = net(x, training=True)
    twin = functional_twin(net)
    dy = RNG.standard_normal(y.shape)
    np.testing.assert_allclose(twin(x, training=True), y, rtol=1e-12)
    np.testing.assert_allclose(net.backward(dy), twin.backward(dy), rtol=1e-9, atol=1e-12)
    for ours, theirs in zip(net.layers, twin.layers[1:], strict=True):
        for g, h in zip(ours.grads, theirs.grads, strict=True):
            if g is None:
                assert h is None
            else:
                np.testing.assert_allclose(g, h, rtol=1e-9, atol=1e-12)


class TwoHeads(keras.Model):
    """Two inputs, two outputs, a layer shared by both inputs."""

    def __init__(self):
        super().__init__()
        self.shared = layers.Dense(4, activation="relu")
        self.cat = layers.Concatenate()
        self.out_a = layers.Dense(3, activation="softmax")
        self.out_b = layers.Dense(1)

    def call(self, inputs):
        a, b = inputs
        h = self.cat([self.shared(a), self.shared(b)])
        return [self.out_a(h), self.out_b(h)]


def test_subclassed_model_with_lists_of_inputs_and_outputs_fits():
    keras.utils.set_random_seed(2)
    xa, xb = RNG.standard_normal((32, 5)), RNG.standard_normal((32, 5))
    ya, yb = (xa.sum(1) > 0) + (xb.sum(1) > 0), xa[:, :1] - xb[:, :1]
    model = TwoHeads()
    model.compile(
        keras.optimizers.Adam(0.02),
        loss=["sparse_categorical_crossentropy", "mse"],
        loss_weights=[1.0, 0.5],
    )
    history = model.fit([xa, xb], [ya, yb], batch_size=8, epochs=8, verbose=0).history
    assert history["loss"][-1] < 0.7 * history["loss"][0]
    assert {"output_1_loss", "output_2_loss"} <= set(history)
    pa, pb = model.predict([xa, xb])
    assert pa.shape == (32, 3) and pb.shape == (32, 1)


# ----- composite layers (call uses only layers) --------------------------------------------------
class DenseResidual(layers.Layer):
    """relu(x + Dense(Dense(x))): a composite with a shared-free residual path."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.inner = layers.Dense(units, activation="relu")
        self.outer = layers.Dense(units)
        self.add = layers.Add()
        self.relu = layers.ReLU()

    def call(self, x):
        return self.relu(self.add([x, self.outer(self.inner(x))]))


def test_composite_layer_passes_gradcheck():
    block = DenseResidual(4)
    errors = gradcheck(block, RNG.standard_normal((3, 4)))
    assert set(errors) == {"dx", *block.weight_names}
    assert len(errors) == 5 and all(e < 1e-6 for e in errors.values()), errors
    assert block.count_params() == 2 * (4 * 4 + 4)


def test_composite_layer_called_twice_in_a_graph_sums_its_gradients():
    keras.utils.set_random_seed(3)
    block = DenseResidual(3, dtype="float64")
    a, b = keras.Input((3,), dtype="float64"), keras.Input((3,), dtype="float64")
    model = keras.Model([a, b], layers.Add(dtype="float64")([block(a), block(b)]))
    xs = [RNG.standard_normal((4, 3)), RNG.standard_normal((4, 3))]
    dy = RNG.standard_normal((4, 3))
    model(xs)
    model.backward(dy)
    got = [g.copy() for g in block.inner.grads]
    separate = []
    for x in xs:  # each call alone, then summed
        block(x)
        block.backward(dy)
        separate.append(block.inner.grads)
    for g, g1, g2 in zip(got, *separate, strict=True):
        np.testing.assert_allclose(g, g1 + g2, rtol=1e-12)


def test_composite_layer_trains_in_a_functional_and_a_subclassed_model():
    keras.utils.set_random_seed(4)
    x, y = RNG.standard_normal((40, 4)), RNG.standard_normal((40, 4))
    inputs = keras.Input((4,))
    functional = keras.Model(inputs, layers.Dense(4)(DenseResidual(4)(inputs)))

    class Sub(keras.Model):
        def __init__(self):
            super().__init__()
            self.block, self.head = DenseResidual(4), layers.Dense(4)

        def call(self, inputs):
            return self.head(self.block(inputs))

    for model in (functional, Sub()):
        model.compile(keras.optimizers.Adam(0.01), "mse")
        losses = model.fit(x, y, batch_size=8, epochs=6, verbose=0).history["loss"]
        assert losses[-1] < 0.8 * losses[0], (model.name, losses)


# ----- custom layers with new math ---------------------------------------------------------------
class Scale(layers.Layer):
    """y = x * gamma + beta per channel: new math, so backward and add_weight are written here."""

    def build(self, input_shape):
        self.add_weight(shape=(input_shape[-1],), initializer="ones", name="gamma")
        self.add_weight(shape=(input_shape[-1],), initializer="zeros", name="beta")

    def call(self, x):
        self._x = x
        return x * self.gamma + self.beta

    def backward(self, dy):
        axes = tuple(range(dy.ndim - 1))
        self.grads = [(dy * self._x).sum(axis=axes), dy.sum(axis=axes)]
        return dy * self.gamma


class Square(layers.Layer):
    """y = x ** 2 written as forward / backward (no weights)."""

    def forward(self, x, training=False):
        self._x = x
        return x * x

    def backward(self, dy):
        self.grads = []
        return 2 * self._x * dy


@pytest.mark.parametrize("cls", [Scale, Square])
def test_custom_layer_with_backward_passes_gradcheck(cls):
    layer = cls()
    errors = gradcheck(layer, RNG.standard_normal((3, 2, 2, 3)))
    want = {"dx", "gamma", "beta"} if cls is Scale else {"dx"}
    assert set(errors) == want and all(e < 1e-6 for e in errors.values()), errors


def test_custom_layer_trains_in_a_shared_position():
    keras.utils.set_random_seed(5)
    scale = Scale()
    a, b = keras.Input((3,)), keras.Input((3,))
    model = keras.Model([a, b], layers.Dense(1)(layers.Concatenate()([scale(a), scale(b)])))
    model.compile(keras.optimizers.Adam(0.05), "mse")
    xa, xb = RNG.standard_normal((32, 3)), RNG.standard_normal((32, 3))
    history = model.fit([xa, xb], 3 * xa[:, :1] - xb[:, 1:2], epochs=10, verbose=0)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
    assert scale.weight_names == ("gamma", "beta") and scale.count_params() == 6


class Doubled(layers.Layer):
    """New math in call, and no backward: it can run forward, not train."""

    def call(self, x):
        return x * 2.0


class HalfLayers(layers.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = layers.Dense(3)

    def call(self, x):
        return self.dense(x) + 1.0


class OnlyForward(layers.Layer):
    def forward(self, x, training=False):
        return np.tanh(x)


@pytest.mark.parametrize(
    ("cls", "message"),
    [
        (
            Doubled,
            r"Doubled 'doubled\w*': call\(\) returned an array that no slidenet layer "
            r"produced.*write a backward\(self, dy\)",
        ),
        (HalfLayers, r"HalfLayers 'half_layers\w*': call\(\) returned an array that no slidenet"),
        (
            OnlyForward,
            r"OnlyForward 'only_forward\w*' has no backward pass: define "
            r"backward\(self, dy\)",
        ),
    ],
)
def test_layer_without_backward_fails_clearly_at_its_first_backward(cls, message):
    inputs = keras.Input((3,))
    model = keras.Model(inputs, layers.Dense(2)(cls()(inputs)))
    x = RNG.standard_normal((4, 3))
    assert model.predict(x).shape == (4, 2)  # forward is fine
    model.compile("sgd", "mse")
    with pytest.raises((RuntimeError, NotImplementedError), match=message):
        model.fit(x, np.zeros((4, 2)), verbose=0)


def test_numpy_math_inside_a_subclassed_call_names_the_model():
    class Leaky(keras.Model):
        def __init__(self):
            super().__init__()
            self.d1, self.d2 = layers.Dense(3), layers.Dense(1)

        def call(self, inputs):
            return self.d2(self.d1(inputs) * 0.5)

    model = Leaky()
    model.compile("sgd", "mse")
    with pytest.raises(
        RuntimeError,
        match=r"Leaky 'leaky\w*': the input of Dense 'dense\w*' "
        r"was computed outside slidenet layers",
    ):
        model.fit(RNG.standard_normal((4, 2)), np.zeros((4, 1)), verbose=0)
