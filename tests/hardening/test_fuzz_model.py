"""Fuzz Sequential's fit / evaluate / predict (and the *_on_batch forms) with random data.

Inputs of random shapes (right, wrong rank, wrong size, empty batch), dtypes, NaN / Inf, strided
and read-only arrays; targets of mismatched length, wrong dtype, out-of-range labels; odd batch
sizes, epochs and validation splits. A call either works (outputs of the right shape, finite) or
raises a documented error naming the method.

Empty batches (documented in the README's Reliability section): ``predict`` (and
``predict_on_batch``, ``model(x)``) of 0 examples returns an empty array shaped (0, *outputs), as
Keras does; ``fit``, ``evaluate``, ``train_on_batch`` and ``test_on_batch`` with 0 examples raise
a ValueError (there is no loss to average).
"""

from __future__ import annotations

import numpy as np
import pytest
from fuzz_support import (
    FUZZ,
    assert_finite,
    call_clean,
    float_arrays,
    is_nasty,
    odd_arrays,
    small_shapes,
)
from hypothesis import given
from hypothesis import strategies as st

import slidenet as sn
from slidenet import layers as L

INPUT = (4, 4, 1)
CLASSES = 3


def image_model(loss="sparse_categorical_crossentropy", last="softmax", units=CLASSES):
    sn.utils.set_random_seed(0)
    model = sn.Sequential(
        [
            L.Input(INPUT),
            L.Conv2D(2, 2, padding="same", activation="relu"),
            L.MaxPooling2D(2),
            L.BatchNormalization(),
            L.Flatten(),
            L.Dropout(0.25, seed=1),
            L.Dense(units, activation=last),
        ]
    )
    model.compile("adam", loss=loss, metrics=["accuracy"])
    return model


MODELS = {
    "sparse": lambda: image_model(),
    "onehot": lambda: image_model("categorical_crossentropy"),
    "logits": lambda: image_model(sn.losses.SparseCategoricalCrossentropy(from_logits=True), None),
    "binary": lambda: image_model("binary_crossentropy", "sigmoid", 1),
    "mse": lambda: image_model("mse", None),
}
WHO = [
    "Model '",
    "fit",
    "evaluate",
    "predict",
    "train_on_batch",
    "test_on_batch",
    "loss",
    "validation",
]


@st.composite
def inputs(draw):
    """Mostly right-shaped inputs, sometimes (N, H, W) or wrong shapes; odd contents at times."""
    n = draw(st.integers(0, 5))
    kind = draw(st.sampled_from(["right", "right", "no-channel", "wrong"]))
    if kind == "right":
        shape = (n, *INPUT)
    elif kind == "no-channel":
        shape = (n, *INPUT[:-1])
    else:
        shape = draw(small_shapes(0, 5, 0, 5))
    if draw(st.integers(0, 3)) == 0:
        return draw(odd_arrays(shape))
    return draw(float_arrays(shape, bound=3.0))


@st.composite
def targets(draw, n, loss):
    """Targets for ``n`` examples, sometimes of another length, dtype or range."""
    m = n if draw(st.integers(0, 3)) else draw(st.integers(0, 6))
    kind = draw(st.sampled_from(["labels", "labels", "onehot", "float", "odd", "nested"]))
    rng = np.random.default_rng(draw(st.integers(0, 99)))
    if kind == "labels":
        high = 1 if loss == "binary" else CLASSES
        y = rng.integers(0, high + draw(st.integers(0, 1)), m)
        return y.reshape(m, 1) if loss == "binary" and draw(st.booleans()) else y
    if kind == "onehot":
        return np.eye(CLASSES, dtype=np.float32)[rng.integers(0, CLASSES, m)]
    if kind == "float":
        return rng.uniform(-1, 2, (m, draw(st.integers(1, 3)))).astype(np.float32)
    if kind == "nested":
        return [[1, 2], [3]] if m else []
    return draw(odd_arrays((m,)))


batch_sizes = st.one_of(st.integers(-1, 6), st.sampled_from([None, 2.0, True, "4"]))


@FUZZ
@given(st.sampled_from(sorted(MODELS)), inputs(), st.data(), batch_sizes)
def test_predict(model_name, x, data, batch_size):
    model = MODELS[model_name]()
    with np.errstate(all="ignore") if is_nasty(x) else _nothing():
        ok, out = call_clean(model.predict, WHO, x, batch_size=batch_size)
    if ok:
        assert out.shape == (len(x), *model.output_shape[1:])
        assert_finite(out, "predict")


@FUZZ
@given(st.sampled_from(sorted(MODELS)), inputs(), st.data(), batch_sizes, st.integers(-1, 2))
def test_fit_and_evaluate(model_name, x, data, batch_size, epochs):
    model = MODELS[model_name]()
    n = len(x) if x.ndim else 0
    y = data.draw(targets(n, model_name))
    split = data.draw(st.sampled_from([0.0, 0.0, 0.5, 1.0, -0.1]))
    with np.errstate(all="ignore") if is_nasty(x) else _nothing():
        ok, history = call_clean(
            model.fit,
            WHO,
            x,
            y,
            batch_size=batch_size,
            epochs=epochs,
            verbose=0,
            validation_split=split,
        )
        if ok:
            assert n > 0
            for values in history.history.values():
                assert_finite(np.asarray(values, float), "fit history")
        ok, result = call_clean(model.evaluate, WHO, x, y, batch_size=batch_size, verbose=0)
    if ok:
        assert n > 0
        assert_finite(np.asarray(result, float), "evaluate")


@FUZZ
@given(st.sampled_from(sorted(MODELS)), inputs(), st.data())
def test_on_batch_methods(model_name, x, data):
    model = MODELS[model_name]()
    n = len(x) if x.ndim else 0
    y = data.draw(targets(n, model_name))
    with np.errstate(all="ignore") if is_nasty(x) else _nothing():
        for method in (model.train_on_batch, model.test_on_batch):
            ok, result = call_clean(method, WHO, x, y)
            if ok:
                assert_finite(np.asarray(result, float), method.__name__)
        ok, out = call_clean(model.predict_on_batch, WHO + ["predict_on_batch"], x)
    if ok:
        assert out.shape == (len(x), *model.output_shape[1:])


@pytest.mark.parametrize("method", ["predict", "predict_on_batch", "__call__"])
def test_empty_batch_predicts_an_empty_array(method):
    model = image_model()
    out = getattr(model, method)(np.zeros((0, *INPUT), np.float32))
    assert out.shape == (0, CLASSES) and out.dtype == np.float32


@pytest.mark.parametrize("method", ["fit", "evaluate", "train_on_batch", "test_on_batch"])
def test_empty_batch_cannot_train_or_evaluate(method):
    model = image_model()
    kwargs = {"verbose": 0} if method in ("fit", "evaluate") else {}
    with pytest.raises(ValueError, match=rf"{method}: x is empty \(shape \(0, 4, 4, 1\)\)"):
        getattr(model, method)(np.zeros((0, *INPUT)), np.zeros(0, int), **kwargs)


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
