"""Sequential end to end: the lecture's tf.keras programs run with `import slidenet as keras`,
a model overfits one batch, and a small CNN learns X versus O with shifts."""

import numpy as np
import pytest

import slidenet as keras
from slidenet.datasets import xo


def mnist_shaped(n, seed=0):
    """Digit-like data: class k lights up block k of a 28x28 image, plus noise (learnable)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n).astype(np.uint8)
    x = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
    for i, k in enumerate(y):
        r, c = divmod(int(k), 4)
        x[i, 2 + 8 * r : 8 + 8 * r, 2 + 6 * c : 8 + 6 * c] = 255
    return x, y


def test_lecture_program_softmax_regression():
    keras.utils.set_random_seed(1)
    (x, y), (xt, yt) = mnist_shaped(600), mnist_shaped(200, seed=1)
    x, xt = x / 255.0, xt / 255.0
    model = keras.models.Sequential(
        [keras.layers.Flatten(input_shape=[28, 28]), keras.layers.Dense(10, activation="softmax")]
    )
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=5, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    loss, acc = model.evaluate(xt, yt, verbose=0)
    assert acc > 0.9
    assert model.predict(xt[:3]).shape == (3, 10)


def test_lecture_program_dense_dropout_adam_scheduler():
    keras.utils.set_random_seed(2)
    (x, y), (xt, yt) = mnist_shaped(600), mnist_shaped(200, seed=1)
    x, xt = x / 255.0, xt / 255.0
    model = keras.models.Sequential(
        [
            keras.layers.Flatten(input_shape=[28, 28]),
            keras.layers.Dense(128, activation="relu", kernel_initializer="he_normal"),
            keras.layers.Dropout(0.2),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    schedule = keras.callbacks.LearningRateScheduler(lambda epoch: 0.01 * 0.6**epoch)
    history = model.fit(x, y, epochs=3, callbacks=[schedule], validation_split=0.1, verbose=0)
    assert history.history["learning_rate"] == pytest.approx([0.01, 0.006, 0.0036])
    assert set(history.history) >= {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert model.evaluate(xt, yt, verbose=0)[1] > 0.95


def test_lecture_program_conv_cnn_on_nhw_arrays():
    keras.utils.set_random_seed(3)
    (x, y), (xt, yt) = mnist_shaped(300), mnist_shaped(100, seed=1)
    x, xt = x / 255.0, xt / 255.0  # (N, 28, 28) fed to a model declared with [28, 28, 1]
    model = keras.models.Sequential(
        [
            keras.layers.Conv2D(8, 5, padding="same", activation="relu", input_shape=[28, 28, 1]),
            keras.layers.MaxPooling2D(2),
            keras.layers.Conv2D(16, 5, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Flatten(),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, batch_size=32, epochs=3, verbose=0)
    assert model.evaluate(xt, yt, verbose=0)[1] > 0.9


def test_full_lecture_cnn_has_the_lecture_parameter_count():
    model = keras.Sequential(
        [
            keras.layers.Conv2D(32, 5, padding="same", activation="relu", input_shape=(28, 28, 1)),
            keras.layers.MaxPooling2D(2),
            keras.layers.Conv2D(64, 5, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Flatten(),
            keras.layers.Dense(1024, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    assert model.count_params() == 3_274_634
    assert model.output_shape == (None, 10)


def test_overfits_one_batch():
    keras.utils.set_random_seed(4)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 8, 8, 2)).astype(np.float32)
    y = np.arange(16) % 4
    model = keras.Sequential(
        [
            keras.Input((8, 8, 2)),
            keras.layers.Conv2D(8, 3, activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(4, activation="softmax"),
        ]
    )
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy", ["accuracy"])
    first = model.train_on_batch(x, y)[0]
    for _ in range(150):
        loss, acc = model.train_on_batch(x, y)
    assert loss < 0.05 * first
    assert acc == 1.0


def test_small_cnn_learns_x_versus_o_with_shifts():
    keras.utils.set_random_seed(5)
    (x, y), (xt, yt) = xo.load_data(n_train=400, n_test=200, size=20, seed=0)
    model = keras.Sequential(
        [
            keras.layers.Conv2D(6, 3, activation="relu", input_shape=(20, 20, 1)),
            keras.layers.MaxPooling2D(2),
            keras.layers.Conv2D(8, 3, activation="relu"),
            keras.layers.GlobalMaxPooling2D(),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy", ["accuracy"])
    model.fit(x / 255.0, y, batch_size=32, epochs=8, verbose=0)
    assert model.evaluate(xt / 255.0, yt, verbose=0)[1] >= 0.9


def test_repeatable_bit_for_bit_with_seed():
    def run():
        keras.utils.set_random_seed(7)
        x, y = mnist_shaped(64)
        model = keras.Sequential(
            [
                keras.layers.Conv2D(4, 3, strides=2, activation="relu", input_shape=(28, 28, 1)),
                keras.layers.Flatten(),
                keras.layers.Dropout(0.3),
                keras.layers.Dense(10, activation="softmax"),
            ]
        )
        model.compile("adam", "sparse_categorical_crossentropy")
        model.fit(x / 255.0, y, batch_size=16, epochs=2, verbose=0)
        return model.get_weights()

    for a, b in zip(run(), run(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_one_hot_binary_and_mse_losses_train():
    keras.utils.set_random_seed(8)
    x, y = mnist_shaped(200)
    x = x.reshape(200, -1) / 255.0
    onehot = keras.utils.to_categorical(y, 10)
    model = keras.Sequential([keras.layers.Dense(10, activation="softmax", input_shape=(784,))])
    model.compile(keras.optimizers.SGD(0.5), "categorical_crossentropy", ["accuracy"])
    model.fit(x, onehot, epochs=5, verbose=0)
    assert model.evaluate(x, onehot, verbose=0)[1] > 0.9

    binary = (y >= 5).astype(np.float32)
    model = keras.Sequential([keras.layers.Dense(1, activation="sigmoid", input_shape=(784,))])
    model.compile(keras.optimizers.SGD(0.5), "binary_crossentropy", ["accuracy"])
    model.fit(x, binary, epochs=10, verbose=0)
    assert model.evaluate(x, binary, verbose=0)[1] > 0.9

    model = keras.Sequential([keras.layers.Dense(1, input_shape=(784,))])
    model.compile(keras.optimizers.SGD(0.002), "mse")
    h = model.fit(x, binary, epochs=5, verbose=0)
    assert h.history["loss"][-1] < h.history["loss"][0]


def test_fused_softmax_cross_entropy_matches_separate_path():
    """The fused gradient (softmax - onehot)/N equals backprop through softmax then
    cross-entropy.
    """
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 3))
    y = np.array([0, 1, 2, 1, 0])
    dense = keras.layers.Dense(4, activation="softmax", dtype="float64")
    model = keras.Sequential([keras.Input((3,)), dense])
    model.compile("sgd", "sparse_categorical_crossentropy")
    out = model._forward(x, training=True)
    loss_f, grad_f, fused = model._loss_and_grad(out, y)
    assert fused
    loss_s, grad_s = model.loss.forward(y, out)
    assert loss_f == pytest.approx(loss_s, rel=1e-9)
    np.testing.assert_allclose(
        dense.backward(grad_f, from_logits=True), dense.backward(grad_s), rtol=1e-7, atol=1e-12
    )


def test_predict_chunks_equal_one_call_and_batch_size_one():
    keras.utils.set_random_seed(9)
    model = keras.Sequential(
        [keras.layers.Conv2D(3, 3, input_shape=(6, 6, 1)), keras.layers.Flatten()]
    )
    x = np.random.default_rng(0).random((10, 6, 6, 1))
    full = model.predict(x, batch_size=10)
    np.testing.assert_allclose(model.predict(x, batch_size=3), full, rtol=1e-6)
    np.testing.assert_allclose(model.predict(x, batch_size=1), full, rtol=1e-6)
    assert full.dtype == np.float32


@pytest.mark.parametrize("padding", ["valid", "same"])
def test_relu_moved_past_max_pool_gives_the_same_outputs_and_gradients(padding):
    """The model pools before applying a conv's ReLU; layer by layer it is ReLU then pool."""
    keras.utils.set_random_seed(10)
    model = keras.Sequential(
        [
            keras.layers.Conv2D(3, 3, activation="relu", input_shape=(7, 7, 2), dtype="float64"),
            keras.layers.MaxPooling2D(2, padding=padding, dtype="float64"),
            keras.layers.Flatten(dtype="float64"),
            keras.layers.Dense(2, dtype="float64"),
        ]
    )
    x = np.random.default_rng(1).normal(size=(4, 7, 7, 2))
    dy = np.random.default_rng(2).normal(size=(4, 2))
    out = model._forward(x, training=True)
    assert model._moved_relu  # the fused path ran
    dx = model._backward(dy, fused=False)
    grads = [g.copy() for layer in model.layers for g in layer.grads]
    plain = x
    for layer in model.layers:
        plain = layer(plain, training=True)
    np.testing.assert_allclose(out, plain, rtol=1e-12)
    g = dy
    for layer in reversed(model.layers):
        g = layer.backward(g)
    np.testing.assert_allclose(dx, g, rtol=1e-12, atol=1e-15)
    plain_grads = [gr for layer in model.layers for gr in layer.grads]
    for a, b in zip(grads, plain_grads, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
