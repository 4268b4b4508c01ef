"""Conv2DTranspose, Conv1DTranspose, DepthwiseConv2D, SeparableConv2D: Keras 3 arguments and
shapes, the layer against the PyTorch oracle, errors, training, and save/load round trips.

(The layer contract, the gradient checks included, runs over these classes in
test_layer_contract.py; the ops are tested in tests/ops/test_conv_transpose.py and
test_depthwise.py.)
"""

from __future__ import annotations

import inspect
import re

import numpy as np
import pytest
import torch.nn.functional as F

import slidenet as keras
from slidenet import layers as L
from torch_oracle import assert_matches, leaf, to_nchw, to_numpy

# Keras 3's arguments and defaults (data_format, regularizers and constraints left out)
KERAS_SIGNATURES = {
    L.Conv2DTranspose: {
        "filters": None, "kernel_size": None, "strides": 1, "padding": "valid",
        "output_padding": None, "dilation_rate": 1, "activation": None, "use_bias": True,
        "kernel_initializer": "glorot_uniform", "bias_initializer": "zeros",
    },
    L.Conv1DTranspose: {
        "filters": None, "kernel_size": None, "strides": 1, "padding": "valid",
        "output_padding": None, "dilation_rate": 1, "activation": None, "use_bias": True,
        "kernel_initializer": "glorot_uniform", "bias_initializer": "zeros",
    },
    L.DepthwiseConv2D: {
        "kernel_size": None, "strides": 1, "padding": "valid", "depth_multiplier": 1,
        "dilation_rate": 1, "activation": None, "use_bias": True,
        "depthwise_initializer": "glorot_uniform", "bias_initializer": "zeros",
    },
    L.SeparableConv2D: {
        "filters": None, "kernel_size": None, "strides": 1, "padding": "valid",
        "dilation_rate": 1, "depth_multiplier": 1, "activation": None, "use_bias": True,
        "depthwise_initializer": "glorot_uniform", "pointwise_initializer": "glorot_uniform",
        "bias_initializer": "zeros",
    },
}  # fmt: skip


@pytest.mark.parametrize("cls", list(KERAS_SIGNATURES), ids=lambda c: c.__name__)
def test_arguments_and_defaults_are_keras(cls):
    params = inspect.signature(cls.__init__).parameters
    got = {
        name: (None if p.default is inspect.Parameter.empty else p.default)
        for name, p in params.items()
        if name not in ("self", "kwargs")
    }
    assert got == KERAS_SIGNATURES[cls]
    assert list(got) == list(KERAS_SIGNATURES[cls])  # positional order too


def test_keras_aliases():
    assert L.Convolution2DTranspose is L.Conv2DTranspose
    assert L.Convolution1DTranspose is L.Conv1DTranspose
    assert L.SeparableConvolution2D is L.SeparableConv2D


@pytest.mark.parametrize(
    ("make", "in_shape", "out_shape", "weights"),
    [
        (lambda: L.Conv2DTranspose(4, 3, strides=2), (5, 5, 3), (11, 11, 4), [(3, 3, 4, 3), (4,)]),
        (lambda: L.Conv2DTranspose(4, 3, strides=2, padding="same"), (5, 6, 3), (10, 12, 4),
         [(3, 3, 4, 3), (4,)]),
        (lambda: L.Conv2DTranspose(2, 2, strides=3), (4, 4, 1), (12, 12, 2), [(2, 2, 2, 1), (2,)]),
        (lambda: L.Conv2DTranspose(2, (3, 4), strides=2, padding="same", output_padding=(1, 0)),
         (4, 4, 1), (8, 6, 2), [(3, 4, 2, 1), (2,)]),
        (lambda: L.Conv2DTranspose(2, 3, strides=2, padding=1, output_padding=1, use_bias=False),
         (4, 4, 2), (8, 8, 2), [(3, 3, 2, 2)]),
        (lambda: L.Conv1DTranspose(3, 4, strides=2), (7, 2), (16, 3), [(4, 3, 2), (3,)]),
        (lambda: L.Conv1DTranspose(3, 3, strides=2, padding="same", output_padding=0), (7, 2),
         (13, 3), [(3, 3, 2), (3,)]),
        (lambda: L.DepthwiseConv2D(3, depth_multiplier=2), (6, 6, 3), (4, 4, 6),
         [(3, 3, 3, 2), (6,)]),
        (lambda: L.DepthwiseConv2D((3, 1), strides=2, padding="same"), (5, 4, 2), (3, 2, 2),
         [(3, 1, 2, 1), (2,)]),
        (lambda: L.SeparableConv2D(5, 3), (6, 6, 3), (4, 4, 5),
         [(3, 3, 3, 1), (1, 1, 3, 5), (5,)]),
        (lambda: L.SeparableConv2D(4, 3, depth_multiplier=2, dilation_rate=2, use_bias=False),
         (6, 7, 2), (2, 3, 4), [(3, 3, 2, 2), (1, 1, 4, 4)]),
    ],
)  # fmt: skip
def test_output_and_weight_shapes_are_keras(make, in_shape, out_shape, weights):
    layer = make()
    layer.build(in_shape)
    assert layer.output_shape == (None, *out_shape)
    assert [w.shape for w in layer.get_weights()] == weights
    assert layer(np.zeros((2, *in_shape), np.float32)).shape == (2, *out_shape)


def test_separable_has_fewer_parameters_than_conv2d():
    model = keras.Sequential([L.Input((8, 8, 16)), L.SeparableConv2D(32, 3)])
    conv = keras.Sequential([L.Input((8, 8, 16)), L.Conv2D(32, 3)])
    assert model.count_params() == 3 * 3 * 16 + 16 * 32 + 32 == 688
    assert conv.count_params() == (3 * 3 * 16 + 1) * 32 == 4640


def test_conv2d_transpose_restores_the_size_a_strided_conv2d_halved():
    model = keras.Sequential(
        [
            L.Input((12, 10, 1)),
            L.Conv2D(4, 3, strides=2, padding="same"),
            L.Conv2DTranspose(1, 3, strides=2, padding="same"),
        ]
    )
    assert model.layers[0].output_shape == (None, 6, 5, 4)
    assert model.output_shape == (None, 12, 10, 1)


# ------------------------------------------------------------------------------- PyTorch oracle


def _random_layer(layer, in_shape, rng):
    layer.build(in_shape)
    layer.set_weights([rng.standard_normal(w.shape) for w in layer.get_weights()])
    return layer


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_layers_match_torch(dtype):
    """Each layer's forward with its Keras-layout weights, against torch in float64."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 4, 5, 3))
    xt = to_nchw(x, grad=False)

    up = L.Conv2DTranspose(2, 3, strides=2, padding=1, output_padding=1, activation="tanh",
                           dtype=dtype)  # fmt: skip
    ct = _random_layer(up, x.shape[1:], rng)
    k, b = ct.get_weights()
    want = F.conv_transpose2d(xt, leaf(k.transpose(3, 2, 0, 1), False), leaf(b, False), stride=2,
                              padding=1, output_padding=1).tanh()  # fmt: skip
    assert_matches(ct(x), to_numpy(want, True), "Conv2DTranspose")

    dw = _random_layer(L.DepthwiseConv2D(3, depth_multiplier=2, dtype=dtype), x.shape[1:], rng)
    k, b = dw.get_weights()
    kt = leaf(k.reshape(3, 3, 6).transpose(2, 0, 1)[:, None], False)
    want = F.conv2d(xt, kt, leaf(b, False), groups=3)
    assert_matches(dw(x), to_numpy(want, True), "DepthwiseConv2D")

    sep = _random_layer(L.SeparableConv2D(4, (2, 3), strides=(1, 2), dtype=dtype), x.shape[1:], rng)
    dk, pk, b = sep.get_weights()
    z = F.conv2d(xt, leaf(dk.reshape(2, 3, 3).transpose(2, 0, 1)[:, None], False), stride=(1, 2),
                 groups=3)  # fmt: skip
    want = F.conv2d(z, leaf(pk.transpose(3, 2, 0, 1), False), leaf(b, False))
    assert_matches(sep(x), to_numpy(want, True), "SeparableConv2D")

    s = rng.standard_normal((2, 5, 3))
    c1 = _random_layer(L.Conv1DTranspose(2, 3, strides=2, dtype=dtype), s.shape[1:], rng)
    k, b = c1.get_weights()
    want = F.conv_transpose1d(to_nchw(s, grad=False), leaf(k.transpose(2, 1, 0), False),
                              leaf(b, False), stride=2)  # fmt: skip
    assert_matches(c1(s), to_numpy(want, True), "Conv1DTranspose")
    for layer in (ct, dw, sep, c1):
        assert layer(x if layer is not c1 else s).dtype == np.dtype(dtype)


# ----------------------------------------------------------------------------------- errors


def test_output_padding_not_smaller_than_strides_is_refused_at_construction():
    with pytest.raises(ValueError) as info:
        L.Conv2DTranspose(4, 3, strides=2, output_padding=2, name="up")
    msg = str(info.value)
    for part in ("Conv2DTranspose 'up'", "output_padding (2, 2)", "strides (2, 2)",
                 "output_padding=(1, 1)"):  # fmt: skip
        assert part in msg, f"{part!r} not in {msg!r}"
    with pytest.raises(ValueError, match=r"Conv1DTranspose 'up1'.*output_padding \(1,\).*\(1,\)"):
        L.Conv1DTranspose(4, 3, output_padding=1, name="up1")


def test_transposed_output_that_would_be_empty_fails_when_added():
    model = keras.Sequential([L.Input((2, 2, 1))])
    msg = "Conv2DTranspose 'crop': kernel 3x3 on input 2x2 with padding=3 leaves no output"
    with pytest.raises(ValueError, match=re.escape(msg)):
        model.add(L.Conv2DTranspose(1, 3, padding=3, name="crop"))
    assert model.layers == []


@pytest.mark.parametrize(
    "make",
    [lambda: L.DepthwiseConv2D(5, name="dw_big"), lambda: L.SeparableConv2D(2, 5, name="dw_big")],
    ids=["DepthwiseConv2D", "SeparableConv2D"],
)  # fmt: skip
def test_depthwise_kernel_larger_than_input_names_layer_shapes_and_fix(make):
    layer = make()
    with pytest.raises(ValueError) as info:
        keras.Sequential([L.Input((3, 4, 2)), layer])
    msg = str(info.value)
    for part in (f"{type(layer).__name__} 'dw_big'", "5x5", "3x4", "padding='same'"):
        assert part in msg, f"{part!r} not in {msg!r}"


@pytest.mark.parametrize(
    ("make", "pattern"),
    [
        (lambda: L.DepthwiseConv2D(3, depth_multiplier=0), "depth_multiplier must be a positive"),
        (lambda: L.SeparableConv2D(0, 3), "filters must be a positive integer"),
        (lambda: L.Conv2DTranspose(2, 3, padding="full"), "padding must be 'valid', 'same'"),
        (lambda: L.Conv2DTranspose(2, 3, output_padding=(0, 0, 0)), "output_padding must be None"),
        (lambda: L.Conv1DTranspose(2, (3, 3)), "kernel_size must be an int or a tuple of 1"),
        (lambda: L.DepthwiseConv2D(3, strides=0), "strides must be a positive integer"),
    ],
)
def test_bad_arguments_are_refused_at_construction(make, pattern):
    with pytest.raises(ValueError, match=pattern):
        make()


@pytest.mark.parametrize(
    ("layer", "shape", "layout"),
    [(L.Conv2DTranspose(2, 3), (5, 5), "(H, W, D)"), (L.DepthwiseConv2D(3), (5, 5), "(H, W, D)"),
     (L.Conv1DTranspose(2, 3), (5, 5, 1), "(L, D)")],
    ids=["Conv2DTranspose", "DepthwiseConv2D", "Conv1DTranspose"],
)  # fmt: skip
def test_wrong_input_rank_asks_for_the_layout(layer, shape, layout):
    with pytest.raises(ValueError, match=re.escape(f"expects each example shaped {layout}")):
        layer.build(shape)


# ---------------------------------------------------------------------- training, save and load


def _image_model():
    return keras.Sequential(
        [
            L.Input((8, 8, 2)),
            L.Conv2D(4, 3, strides=2, padding="same", activation="relu"),
            L.DepthwiseConv2D(3, padding="same", depth_multiplier=2, activation="relu"),
            L.SeparableConv2D(4, 3, padding="same", activation="tanh"),
            L.Conv2DTranspose(2, 3, strides=2, padding="same", output_padding=1),
            L.Flatten(),
            L.Dense(3, activation="softmax"),
        ]
    )


def test_sequential_with_the_new_layers_learns_and_round_trips(tmp_path):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x, y = rng.random((24, 8, 8, 2)).astype(np.float32), rng.integers(0, 3, 24)
    model = _image_model()
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy", ["accuracy"])
    history = model.fit(x, y, batch_size=8, epochs=8, verbose=0)
    assert history.history["loss"][-1] < 0.8 * history.history["loss"][0]
    path = tmp_path / "more.slidenet"
    model.save(path)
    loaded = keras.load_model(path)
    assert [type(a).__name__ for a in loaded.layers] == [type(a).__name__ for a in model.layers]
    assert [a.get_config() for a in loaded.layers] == [a.get_config() for a in model.layers]
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    # and training continues identically (optimizer state restored)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    loaded.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    for a, b in zip(loaded.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_1d_model_with_conv1d_transpose_round_trips(tmp_path):
    keras.utils.set_random_seed(1)
    model = keras.Sequential(
        [
            L.Input((10, 2)),
            L.Conv1D(3, 3, strides=2, padding="same", activation="relu"),
            L.Conv1DTranspose(2, 3, strides=2, padding="same", output_padding=1),
            L.GlobalAveragePooling1D(),
            L.Dense(2, activation="softmax"),
        ]
    )
    assert model.layers[1].output_shape == (None, 10, 2)
    x = np.random.default_rng(1).random((6, 10, 2)).astype(np.float32)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, np.arange(6) % 2, epochs=1, verbose=0)
    model.save(tmp_path / "m1d.slidenet")
    loaded = keras.load_model(tmp_path / "m1d.slidenet")
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_functional_model_with_the_new_layers_round_trips(tmp_path):
    keras.utils.set_random_seed(2)
    inputs = keras.Input((6, 6, 3))
    a = L.DepthwiseConv2D(3, padding="same")(inputs)
    b = L.SeparableConv2D(3, 3, padding="same")(inputs)
    merged = L.Add()([a, b])
    outputs = L.Conv2DTranspose(2, 2, strides=2)(merged)
    model = keras.Model(inputs, outputs)
    assert model.output_shape == (None, 12, 12, 2)
    x = np.random.default_rng(2).random((3, 6, 6, 3)).astype(np.float32)
    model.compile("sgd", "mse")
    model.fit(x, np.zeros((3, 12, 12, 2), np.float32), epochs=1, verbose=0)
    model.save(tmp_path / "graph.slidenet")
    loaded = keras.load_model(tmp_path / "graph.slidenet")
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
