"""Activation layers (LeakyReLU, PReLU, ELU, Softmax) and the Keras 3 activation names in
Dense / Conv2D / Activation: torch oracle (float64, slidenet float32 and float64), Keras defaults,
errors, the fused softmax loss, training PReLU's alpha, and a save/load round trip."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import slidenet as keras
from slidenet import layers as L
from torch_oracle import assert_matches, leaf, nchw, nhwc

NEW_ACTIVATIONS = ["gelu", "swish", "silu", "elu", "selu", "softplus", "leaky_relu", "hard_sigmoid"]


def _away_from_zero(rng, shape, dtype):
    x = rng.uniform(0.05, 3, shape) * rng.choice([-1.0, 1.0], shape)
    return x.astype(dtype)


def _run(layer, x, dy):
    y = layer(x)
    return y, layer.backward(dy)


# ------------------------------------------------------------------------------ Keras defaults


def test_defaults_are_keras_3():
    assert L.LeakyReLU().negative_slope == 0.3  # the layer; the activation's default is 0.2
    assert L.LeakyReLU(alpha=0.1).negative_slope == 0.1  # Keras 2's argument name
    assert L.ELU().alpha == 1.0
    assert L.Softmax().axis == -1
    prelu = L.PReLU()
    prelu.build((3, 4, 2))
    assert prelu.shared_axes is None and prelu.alpha.shape == (3, 4, 2)
    assert (prelu.alpha == 0).all()  # alpha_initializer="zeros": a ReLU to start with
    assert prelu.get_config()["alpha_initializer"] == "zeros"


@pytest.mark.parametrize(
    "shared_axes, want",
    [([1, 2], (1, 1, 2)), (1, (1, 4, 2)), ([-1], (3, 4, 1)), ((1, 2, 3), (1, 1, 1))],
)
def test_prelu_alpha_shape_follows_shared_axes(shared_axes, want):
    layer = L.PReLU(shared_axes=shared_axes)
    layer.build((3, 4, 2))
    assert layer.alpha.shape == want and layer.count_params() == int(np.prod(want))


@pytest.mark.parametrize(
    "layer",
    [
        L.LeakyReLU(0.1),
        L.ELU(0.7),
        L.Softmax(axis=[1, 2]),
        L.PReLU("ones", shared_axes=[1]),
    ],
    ids=lambda layer: type(layer).__name__,
)
def test_config_round_trip(layer):
    config = json.loads(json.dumps(layer.get_config()))
    clone = type(layer).from_config(config)
    assert clone.get_config() == config


# ------------------------------------------------------------------------------ PyTorch oracle


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    "make, torch_fn",
    [
        (lambda d: L.LeakyReLU(dtype=d), lambda t: F.leaky_relu(t, 0.3)),
        (lambda d: L.LeakyReLU(0.01, dtype=d), F.leaky_relu),
        (lambda d: L.ELU(dtype=d), F.elu),
        (lambda d: L.ELU(alpha=0.3, dtype=d), lambda t: F.elu(t, 0.3)),
        (lambda d: L.Softmax(dtype=d), lambda t: torch.softmax(t, -1)),
        (lambda d: L.Softmax(axis=1, dtype=d), lambda t: torch.softmax(t, 1)),
        (lambda d: L.Softmax(axis=-2, dtype=d), lambda t: torch.softmax(t, 2)),
    ],
    ids=["leaky", "leaky-0.01", "elu", "elu-0.3", "softmax", "softmax-axis1", "softmax-axis-2"],
)
def test_weightless_layers_match_torch(make, torch_fn, dtype):
    rng = np.random.default_rng(0)
    x = _away_from_zero(rng, (2, 3, 4, 5), dtype)
    dy = rng.standard_normal(x.shape).astype(dtype)
    y, dx = _run(make(dtype), x, dy)
    assert y.dtype == dx.dtype == np.dtype(dtype)
    xt = leaf(x)
    yt = torch_fn(xt)
    (yt * leaf(dy, grad=False)).sum().backward()
    assert_matches(y, yt, "y")
    assert_matches(dx, xt.grad, "dx")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_prelu_layer_matches_torch_prelu(dtype):
    """shared_axes=[1, 2]: one alpha per channel, as torch.nn.PReLU(num_parameters=C) on NCHW."""
    rng = np.random.default_rng(1)
    layer = L.PReLU(shared_axes=[1, 2], dtype=dtype)
    layer.build((4, 5, 3))
    layer.set_weights([rng.uniform(-0.3, 0.6, (1, 1, 3))])
    x = _away_from_zero(rng, (2, 4, 5, 3), dtype)
    dy = rng.standard_normal(x.shape).astype(dtype)
    y, dx = _run(layer, x, dy)
    (dalpha,) = layer.grads
    assert dalpha.shape == (1, 1, 3) and dalpha.dtype == np.dtype(dtype)
    xt, at = leaf(x), leaf(layer.alpha.reshape(3))
    yt = nhwc(F.prelu(nchw(xt), at))
    (yt * leaf(dy, grad=False)).sum().backward()
    assert_matches(y, yt, "prelu y")
    assert_matches(dx, xt.grad, "prelu dx")
    assert_matches(dalpha.reshape(3), at.grad, "prelu dalpha")


@pytest.mark.parametrize("name", NEW_ACTIVATIONS)
@pytest.mark.parametrize(
    "make",
    [
        lambda a: L.Activation(a),
        lambda a: L.Dense(3, activation=a),
        lambda a: L.Conv2D(2, 2, activation=a),
    ],
    ids=["Activation", "Dense", "Conv2D"],
)
def test_activation_names_work_in_every_layer_that_takes_one(make, name):
    rng = np.random.default_rng(2)
    x = _away_from_zero(rng, (2, 3, 3, 2), np.float32)
    layer = make(name)
    y = layer(x)
    assert layer.activation == name and layer.get_config()["activation"] == name
    clone = type(layer).from_config(json.loads(json.dumps(layer.get_config())))
    assert clone.activation == name
    if isinstance(layer, L.Activation):
        np.testing.assert_array_equal(y, getattr(keras.activations, name)(x))
    elif isinstance(layer, L.Dense):
        z = x @ layer.kernel + layer.bias
        np.testing.assert_allclose(y, getattr(keras.activations, name)(z), rtol=1e-6, atol=1e-6)
    dx = layer.backward(np.ones_like(y))
    assert dx.shape == x.shape and dx.dtype == np.float32 and np.isfinite(dx).all()


# ------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "make, error, pattern",
    [
        (lambda: L.LeakyReLU(-0.1), ValueError, r"negative_slope must be >= 0"),
        (lambda: L.LeakyReLU("a"), TypeError, "negative_slope must be a number"),
        (lambda: L.ELU(alpha=None), TypeError, "alpha must be a number"),
        (lambda: L.Softmax(axis=1.5), TypeError, "axis must be an int or a list of ints"),
        (lambda: L.PReLU(shared_axes="1"), TypeError, "shared_axes: axis must be an int"),
        (lambda: L.PReLU(alpha_initializer="zero"), ValueError, "Did you mean 'zeros'"),
        (lambda: L.LeakyReLU(bogus=1), TypeError, "unexpected keyword argument"),
    ],
)
def test_argument_errors(make, error, pattern):
    with pytest.raises(error, match=pattern):
        make()


@pytest.mark.parametrize(
    "layer, pattern",
    [
        (L.Softmax(axis=0, name="sm"), r"Softmax 'sm': axis 0 is not a feature axis"),
        (L.Softmax(axis=3), r"axis 3 is not a feature axis of input \(None, 4, 5\)"),
        (L.Softmax(axis=[2, -1]), "names the same axis twice"),
        (L.PReLU(shared_axes=[0]), r"shared_axes: axis 0 .* \(axis 0 is the batch\)"),
        (L.PReLU(shared_axes=[3]), r"use 1..2 or -2..-1"),
    ],
)
def test_axis_errors_at_build(layer, pattern):
    with pytest.raises(ValueError, match=pattern):
        layer.build((4, 5))


# ----------------------------------------------------------------------------------- in models


def test_softmax_layer_uses_the_fused_cross_entropy():
    """Dense + Softmax() trains exactly like Dense(activation="softmax"): the loss's gradient
    enters below the softmax (p - t on the logits). With saturated logits (the target's
    probability underflows) only the fused form still has a gradient."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((8, 5)).astype(np.float32)
    start = [rng.standard_normal((5, 3)).astype(np.float32) * 200, np.zeros(3, np.float32)]
    y = np.argmin(x @ start[0], axis=1)  # the least likely class, hundreds below the best one
    models = [
        keras.Sequential([L.Dense(3, input_shape=(5,)), L.Softmax()]),
        keras.Sequential([L.Dense(3, activation="softmax", input_shape=(5,))]),
    ]
    losses = []
    for model in models:
        model.set_weights(start)
        model.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
        losses.append([model.train_on_batch(x, y) for _ in range(3)])
    assert models[0].layers[-1].activation == "softmax"
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-6)
    for a, b, w0 in zip(models[0].get_weights(), models[1].get_weights(), start, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
        assert np.abs(a - w0).max() > 0.01  # it learned: the gradient did not vanish
    other = L.Softmax(axis=1)
    other.build((3, 4))
    assert other.activation is None  # along another axis: differentiated through the softmax


def test_prelu_alpha_is_trained():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((16, 6)).astype(np.float32)
    y = (x[:, :1] < 0).astype(np.float32) * x[:, :1]  # needs a negative-side slope
    model = keras.Sequential([L.Dense(4, input_shape=(6,)), L.PReLU(), L.Dense(1)])
    model.compile(keras.optimizers.Adam(0.01), "mse")
    before = model.layers[1].get_weights()[0].copy()
    history = model.fit(x, y, epochs=5, batch_size=8, verbose=0).history["loss"]
    assert np.isfinite(history).all()
    assert not np.array_equal(model.layers[1].get_weights()[0], before)


def _model_with_every_new_piece():
    return keras.Sequential(
        [
            L.Conv2D(4, 3, padding="same", activation="swish", input_shape=(6, 6, 2)),
            L.GroupNormalization(groups=2),
            L.PReLU(shared_axes=[1, 2], alpha_initializer="ones"),
            L.Conv2D(4, 3, activation="gelu"),
            L.LayerNormalization(axis=[1, 2, 3], epsilon=1e-4),
            L.ELU(alpha=0.5),
            L.Flatten(),
            L.Dense(6, activation="leaky_relu"),
            L.LeakyReLU(0.1),
            L.Dense(5, activation="hard_sigmoid"),
            L.Activation("selu"),
            L.Dense(3, activation="softplus"),
            L.Dense(3),
            L.Softmax(),
        ]
    )


def test_save_and_load_round_trip(tmp_path):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((12, 6, 6, 2)).astype(np.float32), rng.integers(0, 3, 12)
    model = _model_with_every_new_piece()
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy", ["accuracy"])
    model.fit(x, y, batch_size=6, epochs=2, verbose=0)
    path = tmp_path / "m.slidenet"
    model.save(path)
    loaded = keras.load_model(path)
    assert [type(a).__name__ for a in loaded.layers] == [type(a).__name__ for a in model.layers]
    for a, b in zip(loaded.layers, model.layers, strict=True):
        assert a.get_config() == b.get_config()
        for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
            np.testing.assert_array_equal(wa, wb)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert loaded.evaluate(x, y, verbose=0) == model.evaluate(x, y, verbose=0)
    # training continues from the same state
    loaded.fit(x, y, batch_size=6, epochs=1, verbose=0, shuffle=False)
    model.fit(x, y, batch_size=6, epochs=1, verbose=0, shuffle=False)
    np.testing.assert_allclose(loaded.predict(x), model.predict(x), rtol=1e-6, atol=1e-7)


def test_functional_model_with_the_new_layers():
    inputs = keras.Input(shape=(5,))
    h = L.Dense(4, activation="gelu")(inputs)
    h = L.LayerNormalization()(h)
    h = L.PReLU()(h)
    outputs = L.Softmax()(L.Dense(3)(h))
    model = keras.Model(inputs, outputs)
    x = np.random.default_rng(6).standard_normal((4, 5)).astype(np.float32)
    p = model.predict(x, verbose=0)
    assert p.shape == (4, 3) and np.allclose(p.sum(axis=1), 1, atol=1e-6)
    model.compile("adam", "sparse_categorical_crossentropy")
    assert np.isfinite(model.train_on_batch(x, np.array([0, 1, 2, 0])))
