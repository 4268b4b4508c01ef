"""fit / evaluate / predict / train_on_batch of graph models with several inputs and outputs.

Each test pins one behaviour that was broken once: validation_split with several inputs,
train_on_batch with a dict of inputs, one output listed twice with two losses, ``[y]`` for a
single output, predict_on_batch with dict outputs, a subclassed model of float64 layers, a
subclassed model compiled with a list of losses before it was built, and shared nested models.
"""

from __future__ import annotations

import numpy as np
import pytest

import slidenet as keras
from slidenet import layers as L

RNG = np.random.default_rng(0)
XA, XB = RNG.standard_normal((20, 4)), RNG.standard_normal((20, 3))
YA, YB = (XA[:, 0] > 0).astype(int) + (XB[:, 0] > 0), XA[:, 1:2] - XB[:, :1]


def two_heads(dtype="float32"):
    a, b = keras.Input((4,), name="a", dtype=dtype), keras.Input((3,), name="b", dtype=dtype)
    h = L.Dense(6, activation="relu", dtype=dtype)(L.Concatenate(dtype=dtype)([a, b]))
    out_a = L.Dense(3, activation="softmax", name="out_a", dtype=dtype)(h)
    out_b = L.Dense(1, name="out_b", dtype=dtype)(h)
    return keras.Model({"a": a, "b": b}, {"out_a": out_a, "out_b": out_b})


def compiled(**kwargs):
    keras.utils.set_random_seed(0)
    model = two_heads(**kwargs)
    model.compile(
        keras.optimizers.Adam(0.01),
        loss={"out_a": "sparse_categorical_crossentropy", "out_b": "mse"},
        loss_weights={"out_a": 1.0, "out_b": 0.5},
        metrics={"out_a": ["accuracy"]},
    )
    return model


X, Y = {"a": XA, "b": XB}, {"out_a": YA, "out_b": YB}
KEYS = ["loss", "out_a_loss", "out_a_accuracy", "out_b_loss"]


@pytest.mark.parametrize("how", ["validation_split", "validation_data"])
def test_fit_validates_several_inputs_and_outputs(how):
    model = compiled()
    if how == "validation_split":
        history = model.fit(X, Y, batch_size=5, epochs=3, validation_split=0.25, verbose=0)
        x_val = {k: v[-5:] for k, v in X.items()}
        y_val = {k: v[-5:] for k, v in Y.items()}
    else:
        x_val, y_val = [XA[:5], XB[:5]], [YA[:5], YB[:5]]  # lists work as well as dicts
        history = model.fit(X, Y, batch_size=5, epochs=3, validation_data=(x_val, y_val), verbose=0)
    logs = history.history
    assert set(logs) == {*KEYS, *(f"val_{k}" for k in KEYS), "learning_rate"}
    assert logs["loss"][-1] < logs["loss"][0]
    evaluated = model.evaluate(x_val, y_val, batch_size=32, verbose=0)
    np.testing.assert_allclose(evaluated, [logs[f"val_{k}"][-1] for k in KEYS], rtol=1e-6)
    total, loss_a, _, loss_b = evaluated
    assert total == pytest.approx(loss_a + 0.5 * loss_b, rel=1e-6)


def test_partial_last_batch_is_weighted_by_its_examples():
    model = compiled()
    x_val, y_val = {"a": XA[:6], "b": XB[:6]}, {"out_a": YA[:6], "out_b": YB[:6]}
    in_one = model.evaluate(x_val, y_val, batch_size=6, verbose=0)
    in_two = model.evaluate(x_val, y_val, batch_size=5, verbose=0)  # batches of 5 and 1
    np.testing.assert_allclose(in_two, in_one, rtol=1e-6)


def test_train_and_test_on_batch_take_dicts_and_lists():
    model = compiled()
    result = model.train_on_batch(X, Y)
    assert len(result) == 4 and result[0] == pytest.approx(result[1] + 0.5 * result[3], rel=1e-6)
    assert model.test_on_batch([XA, XB], [YA, YB]) == model.test_on_batch(X, Y)
    out = model.predict_on_batch(X)
    assert set(out) == {"out_a", "out_b"} and out["out_a"].shape == (20, 3)
    np.testing.assert_array_equal(out["out_b"], model.predict(X)["out_b"])


def test_one_output_listed_twice_gets_both_losses():
    """The same softmax tensor under a cross-entropy and an MSE: the fused (logits) gradient
    of one loss must not be added to the other's probability gradient."""
    x = keras.Input((3,), dtype="float64")
    dense = L.Dense(4, activation="softmax", dtype="float64")
    y = dense(x)
    model = keras.Model(x, [y, y])
    model.compile(keras.optimizers.SGD(0.1), loss=["sparse_categorical_crossentropy", "mse"])
    xs, ya, yb = RNG.standard_normal((5, 3)), RNG.integers(0, 4, 5), RNG.random((5, 4))
    before = model.get_weights()
    model.train_on_batch(xs, [ya, yb])
    analytic = dense.grads[0].copy()
    model.set_weights(before)
    eps, numeric = 1e-6, np.zeros_like(analytic)
    for i in np.ndindex(analytic.shape):
        old = dense.kernel[i]
        dense.kernel[i] = old + eps
        up = model.test_on_batch(xs, [ya, yb])[0]
        dense.kernel[i] = old - eps
        down = model.test_on_batch(xs, [ya, yb])[0]
        dense.kernel[i] = old
        numeric[i] = (up - down) / (2 * eps)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-9)


def test_single_output_takes_a_list_of_one():
    x = keras.Input((4,))
    model = keras.Model(x, L.Dense(2)(x))
    model.compile("sgd", "mse")
    y = np.zeros((20, 2))
    history = model.fit([XA], [y], epochs=1, verbose=0, validation_split=0.2)
    assert set(history.history) == {"loss", "val_loss", "learning_rate"}
    assert model.evaluate([XA], [y], verbose=0) == model.evaluate(XA, y, verbose=0)


class Float64Net(keras.Model):
    def __init__(self):
        super().__init__()
        self.hidden = L.Dense(5, activation="relu", dtype="float64")
        self.out = L.Dense(1, dtype="float64")

    def call(self, inputs):
        return self.out(self.hidden(inputs))


def test_subclassed_model_of_float64_layers_keeps_float64_inputs():
    net = Float64Net()
    x = np.array([[1 + 1e-12, 0, 0, 0]])
    net.build((None, 4))
    assert net.dtype == np.float64
    assert net.predict(x).dtype == np.float64
    # the input is not rounded to float32 on the way in
    delta = net.predict(x) - net.predict(np.array([[1.0, 0, 0, 0]]))
    hidden = net.hidden.kernel[0] * (net.hidden.kernel[0] + net.hidden.bias > 0)
    np.testing.assert_allclose(delta, [[1e-12 * hidden @ net.out.kernel[:, 0]]], rtol=1e-3)


def test_subclassed_model_compiled_with_a_loss_list_before_it_is_built():
    class TwoOut(keras.Model):
        def __init__(self):
            super().__init__()
            self.a, self.b = L.Dense(3, activation="softmax"), L.Dense(1)

        def call(self, inputs):
            return [self.a(inputs), self.b(inputs)]

    model = TwoOut()
    model.compile("adam", loss=["sparse_categorical_crossentropy", "mse"], loss_weights=[1, 2])
    history = model.fit(XA, [YA, YB], epochs=2, verbose=0)
    assert {"output_1_loss", "output_2_loss"} <= set(history.history)


def test_shared_nested_model_trains_on_the_sum_of_its_calls():
    """fit's optimizer step uses the nested model's summed gradient, and its layers' grads
    agree with it (they held only the last call's share once)."""
    keras.utils.set_random_seed(1)
    i = keras.Input((4,))
    inner = keras.Model(i, L.Dense(2, activation="relu")(L.Dense(3)(i)), name="inner")
    a, b = keras.Input((4,)), keras.Input((4,))
    model = keras.Model([a, b], L.Dense(1)(L.Concatenate()([inner(a), inner(b)])))
    model.compile(keras.optimizers.SGD(0.1), "mse")
    before = inner.get_weights()
    model.train_on_batch([XA, XA[::-1]], YB)
    grads = [g for layer in inner.layers for g in layer.grads]
    assert len(grads) == 4
    for g, h in zip(grads, inner.grads, strict=True):
        assert g is h or np.array_equal(g, h)
    for old, new, g in zip(before, inner.get_weights(), grads, strict=True):
        np.testing.assert_allclose(new, old - 0.1 * g, rtol=1e-5, atol=1e-7)


class DictOut(keras.Model):
    def __init__(self):
        super().__init__()
        self.hidden = L.Dense(6, activation="relu")
        self.cls, self.reg = L.Dense(3, activation="softmax"), L.Dense(1)

    def call(self, inputs):
        h = self.hidden(inputs)
        return {"cls": self.cls(h), "reg": self.reg(h)}


def test_subclassed_model_returning_a_dict_names_its_outputs():
    keras.utils.set_random_seed(2)
    model = DictOut()
    model.compile(
        keras.optimizers.Adam(0.02),
        loss={"cls": "sparse_categorical_crossentropy", "reg": "mse"},
        loss_weights={"cls": 1.0, "reg": 0.5},
        metrics={"cls": ["accuracy"]},
    )
    history = model.fit(XA, {"cls": YA, "reg": YB}, batch_size=5, epochs=5, verbose=0).history
    assert set(history) == {"loss", "cls_loss", "cls_accuracy", "reg_loss", "learning_rate"}
    assert history["loss"][-1] < history["loss"][0]
    out = model.predict(XA)
    assert out["cls"].shape == (20, 3) and out["reg"].shape == (20, 1)


def test_predict_builds_an_unbuilt_subclassed_model():
    model = Float64Net()
    assert model.predict(XA, batch_size=8).shape == (20, 1)
