"""Conv3D, MaxPooling3D, AveragePooling3D, GlobalMaxPooling3D, GlobalAveragePooling3D: Keras 3
arguments and shapes, the layers against the PyTorch oracle, errors, training, summary and
save/load round trips.

(The layer contract, gradient checks included, runs over these classes in test_layer_contract.py;
the ops are tested in tests/ops/test_conv3d.py.)
"""

from __future__ import annotations

import inspect
import re

import numpy as np
import pytest
import torch.nn.functional as F

import slidenet as keras
from slidenet import layers as L
from torch_oracle import assert_matches, leaf, nchw, nhwc, to_nchw, to_numpy

# Keras 3's arguments and defaults (data_format, regularizers and constraints left out; tuples
# such as strides=(1, 1, 1) written as the equivalent int, as Conv2D does)
KERAS_SIGNATURES = {
    L.Conv3D: {
        "filters": None, "kernel_size": None, "strides": 1, "padding": "valid",
        "dilation_rate": 1, "groups": 1, "activation": None, "use_bias": True,
        "kernel_initializer": "glorot_uniform", "bias_initializer": "zeros",
    },
    L.MaxPooling3D: {"pool_size": 2, "strides": None, "padding": "valid"},
    L.AveragePooling3D: {"pool_size": 2, "strides": None, "padding": "valid"},
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
    assert L.Convolution3D is L.Conv3D
    assert L.MaxPool3D is L.MaxPooling3D and L.AvgPool3D is L.AveragePooling3D
    assert L.GlobalMaxPool3D is L.GlobalMaxPooling3D
    assert L.GlobalAvgPool3D is L.GlobalAveragePooling3D


@pytest.mark.parametrize(
    ("make", "in_shape", "out_shape", "weights"),
    [
        (lambda: L.Conv3D(2, 3), (28, 28, 28, 1), (26, 26, 26, 2), [(3, 3, 3, 1, 2), (2,)]),
        (lambda: L.Conv3D(4, (1, 3, 3), strides=(1, 2, 2), padding="same"), (5, 7, 8, 3),
         (5, 4, 4, 4), [(1, 3, 3, 3, 4), (4,)]),
        (lambda: L.Conv3D(2, 2, dilation_rate=(2, 1, 1), padding=1, use_bias=False), (3, 4, 4, 2),
         (3, 5, 5, 2), [(2, 2, 2, 2, 2)]),
        (lambda: L.MaxPooling3D(), (4, 6, 5, 3), (2, 3, 2, 3), []),
        (lambda: L.AveragePooling3D((1, 2, 2), padding="same"), (3, 5, 5, 2), (3, 3, 3, 2), []),
        (lambda: L.MaxPooling3D(3, strides=1), (4, 4, 4, 1), (2, 2, 2, 1), []),
        (lambda: L.GlobalMaxPooling3D(), (2, 3, 4, 5), (5,), []),
        (lambda: L.GlobalAveragePooling3D(), (2, 3, 4, 5), (5,), []),
    ],
)  # fmt: skip
def test_output_and_weight_shapes_are_keras(make, in_shape, out_shape, weights):
    layer = make()
    layer.build(in_shape)
    assert layer.output_shape == (None, *out_shape)
    assert [w.shape for w in layer.get_weights()] == weights
    if np.prod(in_shape) < 1000:
        assert layer(np.zeros((2, *in_shape), np.float32)).shape == (2, *out_shape)


# ------------------------------------------------------------------------------- PyTorch oracle


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_layers_match_torch_forward_and_backward(dtype):
    """Conv3D (relu) -> MaxPooling3D 'same' -> AveragePooling3D 'same', each layer's forward and
    backward (dx, kernel and bias gradients) against torch in float64."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 5, 4, 2))
    conv = L.Conv3D(3, (2, 3, 2), strides=(1, 2, 1), padding="same", activation="relu", dtype=dtype)
    conv.build(x.shape[1:])
    conv.set_weights([rng.standard_normal(w.shape) for w in conv.get_weights()])
    pool = L.MaxPooling3D((1, 2, 2), padding="same", dtype=dtype)
    avg = L.AveragePooling3D(2, strides=1, padding="same", dtype=dtype)
    y = avg(pool(conv(x)))
    dy = rng.standard_normal(y.shape)

    kernel, bias = conv.get_weights()
    xt = to_nchw(x)
    kt, bt = leaf(kernel.transpose(4, 3, 0, 1, 2)), leaf(bias)
    z = F.conv3d(F.pad(xt, (0, 1, 1, 1, 0, 1)), kt, bt, stride=(1, 2, 1)).relu()  # TF 'same'
    p = F.max_pool3d(F.pad(z, (0, 0, 0, 1, 0, 0), value=float("-inf")), (1, 2, 2))
    pads = (0, 1, 0, 1, 0, 1)
    ones = p.new_ones((1, 1, *p.shape[2:]))
    a = F.avg_pool3d(F.pad(p, pads), 2, 1) / F.avg_pool3d(F.pad(ones, pads), 2, 1)
    assert y.dtype == np.dtype(dtype)
    assert_matches(y, to_numpy(a, True), "Conv3D -> MaxPooling3D -> AveragePooling3D")
    (a * to_nchw(dy, grad=False)).sum().backward()

    g = avg.backward(dy.astype(dtype))
    g = pool.backward(g)
    dx = conv.backward(g)
    dk, db = conv.grads
    assert dx.dtype == dk.dtype == np.dtype(dtype)
    assert_matches(dx, to_numpy(xt.grad, True), "Conv3D dx")
    assert_matches(dk, to_numpy(kt.grad).transpose(2, 3, 4, 1, 0), "Conv3D kernel gradient")
    assert_matches(db, to_numpy(bt.grad), "Conv3D bias gradient")


def test_global_3d_pooling_matches_torch():
    x = np.random.default_rng(6).standard_normal((2, 2, 3, 2, 4))
    xt = leaf(x)
    assert_matches(L.GlobalMaxPooling3D()(x), xt.amax(dim=(1, 2, 3)), "GlobalMaxPooling3D")
    assert_matches(L.GlobalAveragePooling3D()(x), xt.mean(dim=(1, 2, 3)), "GlobalAveragePooling3D")
    # channels-first round trip of the oracle helpers on a 5D tensor
    assert_matches(to_numpy(nhwc(nchw(leaf(x, False)))), x, "nchw/nhwc on 5D")


# ----------------------------------------------------------------------------------- errors


def test_kernel_larger_than_the_volume_fails_when_added_naming_layer_shapes_and_fix():
    model = keras.Sequential([L.Input((2, 6, 6, 1))])
    with pytest.raises(ValueError) as info:
        model.add(L.Conv3D(4, 3, name="big"))
    msg = str(info.value)
    for part in ("Conv3D 'big'", "kernel 3x3x3", "input 2x6x6", "padding='same'"):
        assert part in msg, f"{part!r} not in {msg!r}"
    assert model.layers == []
    with pytest.raises(ValueError, match=re.escape("MaxPooling3D 'mp': pool window 3x3x3")):
        model.add(L.MaxPooling3D(3, name="mp"))


@pytest.mark.parametrize(
    ("make", "pattern"),
    [
        (lambda: L.Conv3D(4, 3, groups=2), "groups=2 is not supported for 3D convolution"),
        (lambda: L.Conv3D(0, 3), "filters must be a positive integer"),
        (lambda: L.Conv3D(2, (3, 3)), "kernel_size must be an int or a tuple of 3"),
        (lambda: L.Conv3D(2, 3, padding="full"), "padding must be 'valid', 'same'"),
        (lambda: L.Conv3D(2, 3, padding=(1, 2)), "one entry per spatial axis"),
        (lambda: L.MaxPooling3D(2, padding="full"), "padding must be 'valid' or 'same'"),
        (lambda: L.AveragePooling3D((2, 2)), "pool_size must be an int or a tuple of 3"),
    ],
)
def test_bad_arguments_are_refused_at_construction(make, pattern):
    with pytest.raises(ValueError, match=pattern):
        make()


@pytest.mark.parametrize(
    "layer",
    [L.Conv3D(2, 3), L.MaxPooling3D(), L.AveragePooling3D(), L.GlobalMaxPooling3D()],
    ids=lambda layer: type(layer).__name__,
)
def test_images_are_refused_asking_for_volumes(layer):
    with pytest.raises(ValueError, match=re.escape("expects each example shaped (Z, H, W, D)")):
        layer.build((8, 8, 3))


# ----------------------------------------------------------- training, summary, save and load


def _volume_model():
    return keras.Sequential(
        [
            L.Input((4, 6, 6, 2)),
            L.Conv3D(4, 3, padding="same", activation="relu"),
            L.MaxPooling3D(2),
            L.SpatialDropout3D(0.25, seed=2),
            L.Conv3D(4, (1, 3, 3), padding="same", activation="relu"),
            L.UpSampling3D((1, 2, 2)),
            L.AveragePooling3D((2, 2, 2), padding="same"),
            L.GlobalMaxPooling3D(),
            L.Dense(3, activation="softmax"),
        ]
    )


def test_conv3d_model_learns_and_round_trips_with_its_dropout_state(tmp_path):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 16)
    x = rng.random((16, 4, 6, 6, 2)).astype(np.float32)
    x[..., 0] += 0.7 * y[:, None, None, None]  # the class shifts the first channel
    model = _volume_model()
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy", ["accuracy"])
    history = model.fit(x, y, batch_size=8, epochs=10, verbose=0)
    assert history.history["loss"][-1] < 0.8 * history.history["loss"][0]
    path = tmp_path / "volumes.slidenet"
    model.save(path)
    loaded = keras.load_model(path)
    assert [type(a).__name__ for a in loaded.layers] == [type(a).__name__ for a in model.layers]
    assert [a.get_config() for a in loaded.layers] == [a.get_config() for a in model.layers]
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    # training continues identically: optimizer state and the spatial dropout's generator restored
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    loaded.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    for a, b in zip(loaded.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_relu_conv3d_before_max_pooling_gives_the_layer_by_layer_result():
    """The model applies a ReLU convolution's ReLU after the following max pool (they commute);
    Conv3D and MaxPooling3D take part in that rewrite, with the same outputs and gradients."""
    keras.utils.set_random_seed(1)
    model = keras.Sequential(
        [
            L.Input((2, 4, 4, 1)),
            L.Conv3D(2, 2, padding="same", activation="relu"),
            L.MaxPooling3D(2),
        ]
    )
    x = np.random.default_rng(1).standard_normal((3, 2, 4, 4, 1)).astype(np.float32)
    conv, pool = model.layers
    np.testing.assert_array_equal(model.predict(x), pool(conv(x)))
    model.compile(keras.optimizers.SGD(0.1), "mse")
    target = np.zeros((3, 1, 2, 2, 2), np.float32)
    before = conv.get_weights()
    model.train_on_batch(x, target)
    after = conv.get_weights()
    conv.set_weights(before)
    y = pool(conv(x, training=True), training=True)
    conv.backward(pool.backward(2 * (y - target) / target.size))  # mean squared error
    for got, w, g in zip(after, before, conv.grads, strict=True):
        np.testing.assert_allclose(got, w - 0.1 * g, rtol=1e-5, atol=1e-6)
    assert not np.array_equal(after[0], before[0])


def test_summary_shows_the_3d_output_arithmetic():
    model = keras.Sequential([L.Input((4, 6, 6, 1)), L.Conv3D(2, 3, padding="same")])
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "(4 - 3 + 2*1)/1 + 1 = 4; (6 - 3 + 2*1)/1 + 1 = 6" in text
    assert "receptive field 3x3x3" in text
    assert model.count_params() == (27 + 1) * 2
