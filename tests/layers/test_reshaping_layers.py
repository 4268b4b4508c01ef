"""UpSampling1D/2D/3D, ZeroPadding1D/2D/3D, Cropping1D/2D/3D and SpatialDropout1D/2D/3D: Keras 3
arguments and shapes, the layers against the PyTorch oracle, spatial dropout's masks, errors, and
a U-Net-like graph model that trains and round-trips through save/load.

(The layer contract, gradient checks included, runs over these classes in test_layer_contract.py;
the ops are tested in tests/ops/test_resample.py.)
"""

from __future__ import annotations

import inspect
import re

import numpy as np
import pytest
import torch.nn.functional as F

import slidenet as keras
from slidenet import layers as L
from torch_oracle import assert_matches, to_nchw, to_numpy

# Keras 3's arguments and defaults (data_format left out; Keras' tuples written as the equivalent
# ints where the value is the same on every axis, as Conv2D does)
KERAS_SIGNATURES = {
    L.UpSampling1D: {"size": 2},
    L.UpSampling2D: {"size": 2, "interpolation": "nearest"},
    L.UpSampling3D: {"size": 2},
    L.ZeroPadding1D: {"padding": 1},
    L.ZeroPadding2D: {"padding": 1},
    L.ZeroPadding3D: {"padding": 1},
    L.Cropping1D: {"cropping": (1, 1)},
    L.Cropping2D: {"cropping": ((0, 0), (0, 0))},
    L.Cropping3D: {"cropping": ((1, 1), (1, 1), (1, 1))},
    L.SpatialDropout1D: {"rate": None, "seed": None},
    L.SpatialDropout2D: {"rate": None, "seed": None},
    L.SpatialDropout3D: {"rate": None, "seed": None},
}


@pytest.mark.parametrize("cls", list(KERAS_SIGNATURES), ids=lambda c: c.__name__)
def test_arguments_and_defaults_are_keras(cls):
    params = inspect.signature(cls.__init__).parameters
    got = {
        name: (None if p.default is inspect.Parameter.empty else p.default)
        for name, p in params.items()
        if name not in ("self", "kwargs")
    }
    assert got == KERAS_SIGNATURES[cls]


@pytest.mark.parametrize(
    ("make", "in_shape", "out_shape"),
    [
        (lambda: L.UpSampling1D(), (5, 3), (10, 3)),
        (lambda: L.UpSampling2D((1, 2)), (2, 1, 3), (2, 2, 3)),  # Keras' docs example
        (lambda: L.UpSampling2D(3, interpolation="bilinear"), (2, 4, 1), (6, 12, 1)),
        (lambda: L.UpSampling3D(), (2, 3, 4, 1), (4, 6, 8, 1)),
        (lambda: L.ZeroPadding1D((2, 0)), (5, 3), (7, 3)),
        (lambda: L.ZeroPadding2D(), (1, 2, 2), (3, 4, 2)),  # Keras' docs example
        (lambda: L.ZeroPadding2D((1, 2)), (4, 4, 1), (6, 8, 1)),
        (lambda: L.ZeroPadding2D(((1, 0), (2, 3))), (4, 4, 1), (5, 9, 1)),
        (lambda: L.ZeroPadding3D(((0, 1), 2, (1, 1))), (2, 2, 2, 1), (3, 6, 4, 1)),
        (lambda: L.Cropping1D(), (5, 3), (3, 3)),
        (lambda: L.Cropping2D(), (4, 5, 2), (4, 5, 2)),
        (lambda: L.Cropping2D(((2, 2), (4, 4))), (28, 28, 3), (24, 20, 3)),  # Keras' docs
        (lambda: L.Cropping3D((2, 4, 2)), (28, 28, 10, 3), (24, 20, 6, 3)),  # Keras' docs
        (lambda: L.SpatialDropout1D(0.5), (5, 3), (5, 3)),
        (lambda: L.SpatialDropout3D(0.5), (2, 2, 2, 3), (2, 2, 2, 3)),
    ],
)
def test_output_shapes_are_keras(make, in_shape, out_shape):
    layer = make()
    layer.build(in_shape)
    assert layer.output_shape == (None, *out_shape)
    assert layer.count_params() == 0
    assert layer(np.zeros((2, *in_shape), np.float32)).shape == (2, *out_shape)


# ------------------------------------------------------------------------------- PyTorch oracle


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
def test_upsampling2d_matches_torch_interpolate(interpolation, dtype):
    """Keras 3's bilinear (tf.image.resize, half-pixel centres) is torch's align_corners=False."""
    rng = np.random.default_rng(2)
    x, dy = rng.standard_normal((2, 3, 4, 2)), rng.standard_normal((2, 6, 12, 2))
    layer = L.UpSampling2D((2, 3), interpolation=interpolation, dtype=dtype)
    xt = to_nchw(x)
    extra = {} if interpolation == "nearest" else {"align_corners": False}
    yt = F.interpolate(xt, size=(6, 12), mode=interpolation, **extra)
    (yt * to_nchw(dy, grad=False)).sum().backward()
    y = layer(x)
    assert y.dtype == np.dtype(dtype)
    assert_matches(y, to_numpy(yt, True), f"UpSampling2D {interpolation}")
    assert_matches(layer.backward(dy), to_numpy(xt.grad, True), f"UpSampling2D {interpolation} dx")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_padding_and_cropping_match_torch(dtype):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 4, 5, 3))
    pad, crop = L.ZeroPadding2D(((1, 0), (2, 1)), dtype=dtype), L.Cropping2D((1, 2), dtype=dtype)
    xt = to_nchw(x)
    yt = F.pad(xt, (2, 1, 1, 0))[:, :, 1:-1, 2:-2]  # pad, then crop 1 row and 2 columns per side
    y = crop(pad(x))
    dy = rng.standard_normal(y.shape)
    (yt * to_nchw(dy, grad=False)).sum().backward()
    assert y.shape == (2, 3, 4, 3) and y.dtype == np.dtype(dtype)
    assert_matches(y, to_numpy(yt, True), "ZeroPadding2D -> Cropping2D")
    assert_matches(pad.backward(crop.backward(dy)), to_numpy(xt.grad, True), "their dx")


# ------------------------------------------------------------------------------ spatial dropout


@pytest.mark.parametrize(
    ("cls", "shape"),
    [(L.SpatialDropout1D, (64, 5, 8)), (L.SpatialDropout2D, (64, 3, 4, 8)),
     (L.SpatialDropout3D, (32, 2, 2, 3, 8))],
    ids=["1D", "2D", "3D"],
)  # fmt: skip
def test_spatial_dropout_drops_whole_channels_and_scales_the_rest(cls, shape):
    rate = 0.25
    layer = cls(rate, seed=0)
    x = np.random.default_rng(0).uniform(1, 2, shape).astype(np.float32)  # no zeros in x
    y = layer(x, training=True)
    positions = tuple(range(1, x.ndim - 1))
    dropped = (y == 0).all(axis=positions)  # (N, D): whole feature maps
    kept = np.isclose(y, x / (1 - rate), rtol=1e-6).all(axis=positions)
    assert (dropped ^ kept).all(), "every channel of every example is dropped or scaled whole"
    assert 0.15 < dropped.mean() < 0.35  # about `rate` of the 512 (or 256) channels
    assert len({tuple(row) for row in dropped}) > 1  # a fresh draw per example
    dy = np.ones_like(y)
    mask = np.where(kept, np.float32(1 / (1 - rate)), np.float32(0))
    want = np.broadcast_to(mask.reshape(len(x), *(1,) * len(positions), -1), x.shape)
    np.testing.assert_array_equal(layer.backward(dy), want)  # dy * mask
    np.testing.assert_array_equal(layer(x, training=False), x)  # identity at inference
    np.testing.assert_array_equal(layer.backward(dy), dy)


def test_spatial_dropout_is_repeatable_with_a_seed():
    x = np.ones((8, 3, 3, 6), np.float32)
    a, b = L.SpatialDropout2D(0.5, seed=11), L.SpatialDropout2D(0.5, seed=11)
    first = a(x, training=True)
    np.testing.assert_array_equal(b(x, training=True), first)
    assert not np.array_equal(a(x, training=True), first)  # the generator moves on
    np.testing.assert_array_equal(L.SpatialDropout2D(0.0)(x, training=True), x)


@pytest.mark.parametrize("rate", [1.0, -0.1, "0.5", True])
def test_spatial_dropout_rate_is_checked(rate):
    with pytest.raises(
        ValueError, match=r"SpatialDropout2D '.*': rate must be a number in \[0, 1\)"
    ):
        L.SpatialDropout2D(rate)


# ----------------------------------------------------------------------------------- errors


def test_crop_larger_than_the_input_fails_when_added_naming_layer_and_shapes():
    model = keras.Sequential([L.Input((4, 6, 3))])
    msg = ("Cropping2D 'crop': cropping 3 + 2 = 5 rows leaves nothing of the 4 rows of input "
           "(4, 6, 3) (cropping=((3, 2), (0, 0))). Crop at most 3 rows in total.")  # fmt: skip
    with pytest.raises(ValueError, match=re.escape(msg)):
        model.add(L.Cropping2D(((3, 2), (0, 0)), name="crop"))
    with pytest.raises(ValueError, match=re.escape("6 + 0 = 6 columns leaves nothing of the 6")):
        model.add(L.Cropping2D(((0, 0), (6, 0))))
    with pytest.raises(ValueError, match=re.escape("Cropping1D 'c1': cropping 2 + 1 = 3 steps")):
        L.Cropping1D((2, 1), name="c1").build((3, 2))
    assert model.layers == []


@pytest.mark.parametrize(
    ("make", "pattern"),
    [
        (lambda: L.UpSampling2D(2, interpolation="bicubic"), "'nearest' or 'bilinear'"),
        (lambda: L.UpSampling2D(0), "size must be a positive integer"),
        (lambda: L.UpSampling1D((2, 2)), "size must be an int or a tuple of 1"),
        (lambda: L.ZeroPadding2D((1, 2, 3)), "one entry per spatial axis"),
        (lambda: L.ZeroPadding1D(-1), "values must be ints >= 0"),
        (lambda: L.Cropping2D(((1, 2, 3), 1)), "cannot read"),
        (lambda: L.Cropping3D((1, 1)), "one entry per spatial axis"),
    ],
)
def test_bad_arguments_are_refused_at_construction(make, pattern):
    with pytest.raises(ValueError, match=pattern):
        make()


@pytest.mark.parametrize(
    ("layer", "shape", "layout"),
    [(L.UpSampling2D(), (5, 5), "(H, W, D)"), (L.ZeroPadding1D(), (5, 5, 1), "(L, D)"),
     (L.Cropping3D(), (5, 5, 1), "(Z, H, W, D)"), (L.SpatialDropout2D(0.5), (5, 5), "(H, W, D)")],
    ids=["UpSampling2D", "ZeroPadding1D", "Cropping3D", "SpatialDropout2D"],
)  # fmt: skip
def test_wrong_input_rank_asks_for_the_layout(layer, shape, layout):
    with pytest.raises(ValueError, match=re.escape(f"expects each example shaped {layout}")):
        layer.build(shape)


# ---------------------------------------------------------------------- training, save and load


def _unet_like():
    """Down, up (bilinear), concatenate with the skip, pad and crop back to the input size."""
    inputs = keras.Input((8, 8, 2))
    skip = L.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    down = L.MaxPooling2D(2)(L.SpatialDropout2D(0.2, seed=3)(skip))
    mid = L.Conv2D(4, 3, padding="same", activation="relu")(down)
    up = L.UpSampling2D(2, interpolation="bilinear")(mid)
    merged = L.Concatenate()([up, skip])
    padded = L.Cropping2D(((1, 1), (2, 0)))(L.ZeroPadding2D(((1, 1), (0, 2)))(merged))
    outputs = L.Conv2D(1, 1)(L.UpSampling2D(1)(padded))
    return keras.Model(inputs, outputs)


def test_unet_like_graph_learns_and_round_trips(tmp_path):
    keras.utils.set_random_seed(4)
    rng = np.random.default_rng(4)
    x = rng.random((12, 8, 8, 2)).astype(np.float32)
    target = x[..., :1] * 2.0 - x[..., 1:]
    model = _unet_like()
    assert model.output_shape == (None, 8, 8, 1)
    model.compile(keras.optimizers.Adam(0.02), "mse")
    history = model.fit(x, target, batch_size=6, epochs=8, verbose=0)
    assert history.history["loss"][-1] < 0.85 * history.history["loss"][0]
    path = tmp_path / "unet.slidenet"
    model.save(path)
    loaded = keras.load_model(path)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    model.fit(x, target, batch_size=6, epochs=1, verbose=0, shuffle=False)
    loaded.fit(x, target, batch_size=6, epochs=1, verbose=0, shuffle=False)
    for a, b in zip(loaded.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_1d_sequential_with_reshaping_layers_round_trips(tmp_path):
    keras.utils.set_random_seed(5)
    model = keras.Sequential(
        [
            L.Input((10, 2)),
            L.ZeroPadding1D((1, 2)),
            L.Conv1D(3, 3, activation="relu"),
            L.SpatialDropout1D(0.3, seed=1),
            L.UpSampling1D(2),
            L.Cropping1D((2, 4)),
            L.GlobalAveragePooling1D(),
            L.Dense(2, activation="softmax"),
        ]
    )
    assert [layer.output_shape[1] for layer in model.layers[:5]] == [13, 11, 11, 22, 16]
    x = np.random.default_rng(5).random((6, 10, 2)).astype(np.float32)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, np.arange(6) % 2, epochs=1, verbose=0)
    model.save(tmp_path / "m1d.slidenet")
    loaded = keras.load_model(tmp_path / "m1d.slidenet")
    assert [a.get_config() for a in loaded.layers] == [a.get_config() for a in model.layers]
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
