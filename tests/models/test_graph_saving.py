"""Model files of graph models, save_weights / load_weights, summary with "Connected to".

Round trips of functional models with several inputs and outputs (lists and dicts), shared layers,
nested models (a Model and a Sequential inside a Model) and every merge layer: the same
predictions, the same graph, the same compile settings, and training that continues identically
(optimizer state). A subclassed model cannot describe itself: its weights go through
save_weights / load_weights into a new instance.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import slidenet as keras
from slidenet import layers as L
from slidenet.models import ModelFileError

RNG = np.random.default_rng(0)


def shared_nested_model():
    """Dict inputs a, b; a Dense shared by both; a nested Model called twice and a nested
    Sequential; dict outputs (softmax head, linear head)."""
    i = keras.Input((3,))
    inner = keras.Model(i, L.Dense(2, activation="relu")(i), name="inner")
    seq = keras.Sequential(
        [keras.Input((6,)), L.Dense(4, activation="relu"), L.Dense(2)], name="seq"
    )
    a, b = keras.Input((3,), name="a"), keras.Input((3,), name="b")
    shared = L.Dense(3, name="shared")
    ha, hb = shared(a), shared(b)
    s = inner(ha) + inner(hb)
    out_a = L.Dense(2, activation="softmax", name="out_a")(s)
    out_b = L.Dense(1, name="out_b")(seq(L.Concatenate(name="cat")([ha, hb])))
    return keras.Model({"a": a, "b": b}, {"out_a": out_a, "out_b": out_b}, name="two_heads")


X = {"a": RNG.standard_normal((12, 3)), "b": RNG.standard_normal((12, 3))}
Y = {"out_a": RNG.integers(0, 2, 12), "out_b": RNG.standard_normal((12, 1))}


def assert_same_predictions(m1, m2, x):
    p1, p2 = m1.predict(x), m2.predict(x)
    if isinstance(p1, dict):
        assert set(p1) == set(p2)
        p1, p2 = [p1[k] for k in sorted(p1)], [p2[k] for k in sorted(p1)]
    for u, v in zip(
        p1 if isinstance(p1, list) else [p1], p2 if isinstance(p2, list) else [p2], strict=True
    ):
        np.testing.assert_array_equal(u, v)


def test_round_trip_with_shared_layers_nested_models_and_dicts(tmp_path):
    keras.utils.set_random_seed(0)
    model = shared_nested_model()
    model.compile(
        keras.optimizers.Adam(0.01),
        loss={"out_a": "sparse_categorical_crossentropy", "out_b": "mse"},
        loss_weights={"out_a": 1.0, "out_b": 0.3},
        metrics={"out_a": ["accuracy"]},
    )
    model.fit(X, Y, batch_size=4, epochs=2, verbose=0)
    path = tmp_path / "two_heads.slidenet"
    model.save(path)
    loaded = keras.load_model(path)

    assert loaded.get_config() == model.get_config()
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    assert isinstance(loaded.get_layer("inner"), keras.Model)
    assert isinstance(loaded.get_layer("seq"), keras.Sequential)
    assert loaded.output_names == ["out_a", "out_b"] and loaded.loss_weights == [1.0, 0.3]
    assert loaded.count_params() == model.count_params() == 12 + 8 + 6 + (28 + 10) + 3
    for w, v in zip(model.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(w, v)
    assert_same_predictions(model, loaded, X)
    assert loaded.evaluate(X, Y, verbose=0) == model.evaluate(X, Y, verbose=0)
    # the optimizer state came along: one more epoch moves both models alike
    for m in (model, loaded):
        m.fit(X, Y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    assert_same_predictions(model, loaded, X)
    # shared weights stay shared: the loaded "shared" layer is one layer called twice
    shared = loaded.get_layer("shared")
    assert sum(node.layer is shared for node in loaded._nodes) == 2


def test_round_trip_of_lists_and_every_merge_layer(tmp_path):
    a, b = keras.Input((2, 2, 3), name="a"), keras.Input((2, 2, 3), name="b")
    merged = [
        L.Add()([a, b]),
        L.Subtract()([a, b]),
        L.Multiply()([a, b]),
        L.Average()([a, b]),
        L.Maximum()([a, b]),
        L.Minimum()([a, b]),
        L.Concatenate(axis=1)([a, b]),
    ]
    flat = [L.Flatten()(t) for t in merged]
    out = L.Dense(2, name="head")(L.Concatenate()(flat))
    model = keras.Model([a, b], [out, merged[-1]], name="merges")
    model.compile("sgd", loss=["mse", "mse"])
    path = tmp_path / "merges.slidenet"
    model.save(path)
    loaded = keras.load_model(path)
    x = [RNG.standard_normal((3, 2, 2, 3)), RNG.standard_normal((3, 2, 2, 3))]
    assert_same_predictions(model, loaded, x)
    assert loaded.output_shape == [(None, 2), (None, 4, 2, 3)]
    assert [type(t.node.layer).__name__ for t in loaded.outputs] == ["Dense", "Concatenate"]


def test_nested_model_round_trip_keeps_it_callable_alone(tmp_path):
    model = shared_nested_model()
    model.save(tmp_path / "m.slidenet")
    loaded = keras.load_model(tmp_path / "m.slidenet")
    x = RNG.standard_normal((4, 3))
    inner, inner2 = model.get_layer("inner"), loaded.get_layer("inner")
    np.testing.assert_array_equal(inner.predict(x), inner2.predict(x))
    assert inner2.input_shape == (None, 3) and inner2.output_shape == (None, 2)


class Net(keras.Model):
    def __init__(self, units=4, **kwargs):
        super().__init__(**kwargs)
        self.conv = L.Conv2D(3, 3, activation="relu")
        self.bn = L.BatchNormalization()
        self.flat = L.Flatten()
        self.head = L.Dense(units)

    def call(self, inputs, training=False):
        return self.head(self.flat(self.bn(self.conv(inputs), training=training)))


def test_subclassed_model_weights_round_trip(tmp_path):
    x = RNG.standard_normal((6, 5, 5, 1))
    net = Net()
    net.compile("adam", "mse")
    net.fit(x, RNG.standard_normal((6, 4)), epochs=2, verbose=0)  # moves BN's statistics too
    path = tmp_path / "net.weights"
    net.save_weights(path)

    fresh = Net()
    with pytest.raises(ValueError, match=r"load_weights: model 'net\w*' is not built; call it"):
        fresh.load_weights(path)
    fresh.build((None, 5, 5, 1))
    fresh.load_weights(path)
    np.testing.assert_array_equal(fresh.predict(x), net.predict(x))
    for w, v in zip(net.get_weights(), fresh.get_weights(), strict=True):
        np.testing.assert_array_equal(w, v)

    other = Net(units=3)
    other.build((None, 5, 5, 1))
    with pytest.raises(ModelFileError, match=r"saved from another architecture"):
        other.load_weights(path)
    with pytest.raises(ModelFileError, match=r"holds only weights .* model.load_weights"):
        keras.load_model(path)


def test_subclassed_model_save_points_to_save_weights(tmp_path):
    net = Net()
    net.build((None, 5, 5, 1))
    with pytest.raises(NotImplementedError, match=r"save its weights with\s+save_weights"):
        net.save(tmp_path / "net.slidenet")


def test_functional_weights_round_trip_into_a_rebuilt_model(tmp_path):
    model = shared_nested_model()
    model.save_weights(tmp_path / "w")
    twin = shared_nested_model()
    twin.load_weights(tmp_path / "w")
    assert_same_predictions(model, twin, X)


# ----- summary ------------------------------------------------------------------------------------
def summary_text(model) -> str:
    lines = []
    model.summary(print_fn=lines.append)
    return "\n".join(lines)


def test_summary_connects_every_call():
    text = summary_text(shared_nested_model())
    assert re.search(r"Layer \(type\)\s+Output Shape\s+Param #\s+Connected to", text)
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^ (\w+) \(\w+\).*$", text, re.M)}
    assert rows["a"].rstrip().endswith("-")
    assert rows["shared"].rstrip().endswith("a[0][0]")
    assert re.search(r"shared \(Dense\).*a\[0\]\[0\]\n\s+b\[0\]\[0\]", text)  # a second call
    assert re.search(r"inner \(Functional\).*shared\[0\]\[0\]\n\s+shared\[1\]\[0\]", text)
    assert re.search(r"add\w* \(Add\).*inner\[0\]\[0\], inner\[1\]\[0\]", text)
    assert rows["cat"].rstrip().endswith("shared[0][0], shared[1][0]")
    assert rows["seq"].rstrip().endswith("cat[0][0]")
    assert "Total params: 67" in text


def test_summary_of_a_subclassed_model_lists_its_layers():
    net = Net()
    net.build((None, 5, 5, 1))
    text = summary_text(net)
    assert "Connected to" in text and re.search(r"Model: \"net\w*\"", text)
    for name in ("conv2d", "batch_normalization", "flatten", "dense"):
        assert re.search(rf"^ {name}\w* \(", text, re.M), name
    assert f"Total params: {net.count_params():,}" in text
