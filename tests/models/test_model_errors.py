"""Clear errors: at build (model.add), at fit/evaluate/predict, for unknown names, for NaN
losses.
"""

import numpy as np
import pytest

import slidenet as keras


def test_kernel_that_does_not_fit_fails_at_add():
    model = keras.Sequential([keras.layers.Conv2D(4, 3, input_shape=(5, 5, 1))])
    model.add(keras.layers.MaxPooling2D(1))
    with pytest.raises(ValueError, match=r"Conv2D 'c9'.*kernel 5x5.*input 3x3.*padding='same'"):
        model.add(keras.layers.Conv2D(2, 5, name="c9"))
    assert len(model.layers) == 2


def test_conv_after_flatten_names_the_shape():
    model = keras.Sequential([keras.layers.Flatten(input_shape=(4, 4, 1))])
    with pytest.raises(ValueError, match=r"expects each example shaped \(H, W, D\), got \(16,\)"):
        model.add(keras.layers.Conv2D(2, 3))


@pytest.mark.parametrize(
    ("make", "pattern"),
    [
        (lambda m: m.compile("adma", "mse"), "Did you mean 'adam'"),
        (lambda m: m.compile("sgd", "sparse_categorical_crossentropi"), "Did you mean 'sparse_cat"),
        (lambda m: m.compile("sgd", "mse", ["acuracy"]), "Did you mean 'accuracy'"),
        (lambda m: keras.layers.Dense(2, activation="rleu"), "Did you mean 'relu'"),
        (lambda m: keras.layers.Dense(2, kernel_initializer="he_normla"), "he_normal"),
    ],
)
def test_unknown_names_suggest_the_closest(make, pattern):
    model = keras.Sequential([keras.layers.Dense(2, input_shape=(3,))])
    with pytest.raises(ValueError, match=pattern):
        make(model)


def compiled(units=3):
    model = keras.Sequential([keras.layers.Dense(units, activation="softmax", input_shape=(4,))])
    model.compile("sgd", "sparse_categorical_crossentropy", ["accuracy"])
    return model


def test_fit_input_checks():
    model = compiled()
    x = np.zeros((5, 4), np.float32)
    with pytest.raises(ValueError, match=r"x has 5 examples but y has 4"):
        model.fit(x, np.zeros(4), verbose=0)
    with pytest.raises(ValueError, match=r"labels range over 0..3 but the last layer has 3 units"):
        model.fit(x, np.array([0, 1, 2, 3, 0]), verbose=0)
    bad = x.copy()
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"fit: x contains 1 NaN or Inf"):
        model.fit(bad, np.zeros(5), verbose=0)
    with pytest.raises(ValueError, match=r"x has shape \(5, 3\) but the model expects \(None, 4\)"):
        model.fit(np.zeros((5, 3)), np.zeros(5), verbose=0)
    with pytest.raises(TypeError, match=r"dtype <U1"):
        model.fit(np.full((5, 4), "a"), np.zeros(5), verbose=0)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        model.fit(x, np.zeros(5), batch_size=0, verbose=0)
    with pytest.raises(ValueError, match="fit: x is empty"):
        model.fit(np.zeros((0, 4)), np.zeros(0), verbose=0)
    assert model.predict(np.zeros((0, 4))).shape == (0, 3)  # as Keras: 0 examples, 0 outputs


def test_uncompiled_fit_and_not_a_layer():
    model = keras.Sequential([keras.layers.Dense(2, input_shape=(3,))])
    with pytest.raises(RuntimeError, match="compile the model first"):
        model.fit(np.zeros((2, 3)), np.zeros(2), verbose=0)
    with pytest.raises(TypeError, match="forget the parentheses"):
        model.add(keras.layers.Flatten)


def test_uint8_inputs_are_cast_and_nhw_accepted():
    model = keras.Sequential([keras.layers.Conv2D(2, 3, input_shape=(5, 5, 1))])
    out = model.predict(np.full((2, 5, 5), 255, np.uint8))
    assert out.shape == (2, 3, 3, 2) and out.dtype == np.float32


def test_non_finite_loss_stops_fit_and_keeps_previous_weights():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.layers.Dense(1, input_shape=(2,))])
    model.compile(keras.optimizers.SGD(1e3), "mse")
    x = np.array([[1e3, 1e3]] * 8, np.float32)
    y = np.ones(8, np.float32)
    seen = []

    class Keep(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            seen.append(self.model.get_weights())

    with pytest.raises(FloatingPointError, match=r"epoch \d+, batch \d+ of 4.*learning rate"):
        model.fit(x, y, batch_size=2, epochs=50, verbose=0, callbacks=[Keep()])
    for a, b in zip(seen[-1], model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert all(np.isfinite(w).all() for w in model.get_weights())
