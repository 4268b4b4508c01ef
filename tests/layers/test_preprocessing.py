"""Rescaling, Normalization, Resizing, CenterCrop: values, Keras' rules, backward, errors, configs,
and models that use them (integer images, save/load, adapt)."""

import json

import numpy as np
import pytest

import slidenet as keras
from slidenet import layers as L
from slidenet.ops import image_ops
from slidenet.utils import gradcheck


@pytest.fixture
def images():
    return np.random.default_rng(0).uniform(0, 255, (3, 6, 5, 2)).astype(np.float32)


def roundtrip(layer):
    config = json.loads(json.dumps(layer.get_config()))
    clone = type(layer).from_config(config)
    assert clone.get_config() == layer.get_config()
    return clone


# ----- Rescaling ---------------------------------------------------------------------------------
def test_rescaling_values_and_backward(images):
    layer = L.Rescaling(1 / 127.5, offset=-1)
    y = layer(images)
    np.testing.assert_allclose(y, images / 127.5 - 1, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(layer.backward(np.ones_like(y)), np.full(images.shape, 1 / 127.5))
    per_channel = L.Rescaling([1.0, -2.0], offset=[0.0, 3.0])
    np.testing.assert_allclose(per_channel(images)[..., 1], images[..., 1] * -2 + 3, rtol=1e-6)
    assert roundtrip(per_channel).get_config()["scale"] == [1.0, -2.0]


def test_rescaling_errors():
    with pytest.raises(ValueError, match=r"scale of shape \(3,\) does not broadcast.*\(6, 5, 2\)"):
        L.Rescaling([1, 2, 3])(np.zeros((1, 6, 5, 2)))
    with pytest.raises(TypeError, match="Rescaling 'r'.*scale must be a number"):
        L.Rescaling("big", name="r")
    with pytest.raises(ValueError, match="offset must be finite"):
        L.Rescaling(1.0, offset=float("nan"))


# ----- Normalization -----------------------------------------------------------------------------
def test_normalization_adapt_per_channel(images):
    layer = L.Normalization()
    layer.adapt(images)
    np.testing.assert_allclose(layer.mean, images.mean(axis=(0, 1, 2)), rtol=1e-6)
    np.testing.assert_allclose(layer.variance, images.var(axis=(0, 1, 2)), rtol=1e-5)
    y = layer(images)
    np.testing.assert_allclose(y.mean(axis=(0, 1, 2)), 0, atol=1e-5)
    np.testing.assert_allclose(y.std(axis=(0, 1, 2)), 1, rtol=1e-4)
    dx = layer.backward(np.ones_like(y))
    np.testing.assert_allclose(dx[0, 0, 0], 1 / images.std(axis=(0, 1, 2)), rtol=1e-4)
    assert layer.grads == [None, None]


@pytest.mark.parametrize(
    ("axis", "reduce"), [(None, (0, 1, 2, 3)), ((1, 2), (0, 3)), (-2, (0, 1, 3)), ((1, -1), (0, 2))]
)
def test_normalization_axes(images, axis, reduce):
    layer = L.Normalization(axis=axis)
    layer.adapt(images)
    data = images.astype(np.float64)
    mean = data.mean(axis=reduce, keepdims=True)
    std = data.std(axis=reduce, keepdims=True)
    np.testing.assert_allclose(layer(images), (data - mean) / std, rtol=1e-4, atol=1e-5)
    assert layer.mean.shape == np.squeeze(mean, axis=reduce).shape


def test_normalization_adapt_from_batches_equals_adapt_from_array(images):
    whole = L.Normalization(axis=(1, 3))
    whole.adapt(images)
    batched = L.Normalization(axis=(1, 3))
    batched.adapt((images[i : i + 1], None) for i in range(len(images)))
    np.testing.assert_allclose(batched.mean, whole.mean, rtol=1e-6)
    np.testing.assert_allclose(batched.variance, whole.variance, rtol=1e-5)
    first = L.Normalization()
    first.adapt(iter([images[:1], images[1:]]), steps=1)
    np.testing.assert_allclose(first.mean, images[:1].mean(axis=(0, 1, 2)), rtol=1e-6)


def test_normalization_given_statistics_invert_and_epsilon():
    x = np.arange(12, dtype=np.float32).reshape(2, 3, 2)
    layer = L.Normalization(mean=[1.0, 2.0], variance=[4.0, 0.0])
    y = layer(x)
    np.testing.assert_allclose(y[..., 0], (x[..., 0] - 1) / 2)
    np.testing.assert_allclose(y[..., 1], (x[..., 1] - 2) / 1e-7, rtol=1e-6)  # std >= 1e-7
    back = L.Normalization(mean=[1.0, 2.0], variance=[4.0, 9.0], invert=True)
    forward = L.Normalization(mean=[1.0, 2.0], variance=[4.0, 9.0])
    np.testing.assert_allclose(back(forward(x)), x, rtol=1e-6, atol=1e-6)
    assert roundtrip(back).get_config()["mean"] == [1.0, 2.0]
    scalar = L.Normalization(axis=None, mean=3.0, variance=4.0)
    np.testing.assert_allclose(scalar(x), (x - 3) / 2)
    assert gradcheck(L.Normalization(axis=None, mean=1.0, variance=2.0), x)["dx"] < 1e-6


def test_normalization_errors():
    with pytest.raises(ValueError, match="both mean and variance, or neither"):
        L.Normalization(mean=0.0)
    with pytest.raises(ValueError, match="variance must be >= 0"):
        L.Normalization(mean=0.0, variance=-1.0)
    with pytest.raises(ValueError, match="axis must be an int, a tuple of ints or None"):
        L.Normalization(axis="channels")
    with pytest.raises(ValueError, match=r"axis 0 is not an axis.*in 1\.\.3 or -3\.\.-1"):
        L.Normalization(axis=0)(np.zeros((1, 2, 2, 1)))
    with pytest.raises(ValueError, match="names axis 3 twice"):
        L.Normalization(axis=(3, -1))(np.zeros((1, 2, 2, 1)))
    with pytest.raises(ValueError, match=r"mean of shape \(3,\) does not fit"):
        L.Normalization(mean=[1, 2, 3], variance=1.0)(np.zeros((1, 2, 2, 2)))
    layer = L.Normalization(name="norm")
    with pytest.raises(ValueError, match="'norm': adapt data holds NaN"):
        layer.adapt(np.array([[np.nan, 1.0]]))
    with pytest.raises(ValueError, match="adapt got no examples"):
        L.Normalization().adapt(np.zeros((0, 3)))
    layer.adapt(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"built for input \(None, 3\).*\(2, 4\)"):
        layer.adapt(np.ones((2, 4)))


def test_adapted_normalization_survives_save_and_load(tmp_path, images):
    norm = L.Normalization()
    norm.adapt(images)
    adapted = norm.get_weights()
    model = keras.Sequential([L.Input((6, 5, 2)), norm, L.Flatten(), L.Dense(3)])
    model.compile("adam", "mse")  # Adam's slots cover the trained weights only
    before = model.predict(images)
    model.fit(images, np.zeros((3, 3)), epochs=2, verbose=0)
    for kept, now in zip(adapted, norm.get_weights(), strict=True):  # not trained
        np.testing.assert_array_equal(now, kept)
    path = tmp_path / "norm.slidenet"
    model.save(path)
    loaded = keras.load_model(path)
    assert loaded.layers[0].trained_mask() == [False, False]  # kept, never trained
    np.testing.assert_array_equal(loaded.layers[0].mean, norm.mean)
    np.testing.assert_array_equal(loaded.layers[0].variance, norm.variance)
    np.testing.assert_array_equal(loaded.predict(images), model.predict(images))
    assert not np.array_equal(before, model.predict(images))  # the Dense layer did train
    loaded.fit(images, np.zeros((3, 3)), epochs=1, verbose=0)  # the optimizer state fits
    np.testing.assert_array_equal(loaded.layers[0].mean, norm.mean)


# ----- Resizing and CenterCrop -----------------------------------------------------------------
def test_resizing_equals_the_op_and_crops_to_aspect_ratio(images):
    layer = L.Resizing(4, 8, interpolation="nearest")
    np.testing.assert_array_equal(layer(images), image_ops.resize(images, 4, 8, "nearest"))
    assert layer.output_shape == (None, 4, 8, 2)
    cropped = L.Resizing(2, 2, crop_to_aspect_ratio=True)
    want = image_ops.resize(images[:, 0:5, 0:5], 2, 2)  # the centred 5x5 of a 6x5 image
    np.testing.assert_allclose(cropped(images), want, rtol=1e-6)
    dx = cropped.backward(np.ones((3, 2, 2, 2), np.float32))
    assert np.all(dx[:, 5] == 0) and dx.sum() == pytest.approx(3 * 2 * 2 * 2)
    assert roundtrip(cropped).crop_to_aspect_ratio


def test_center_crop_takes_the_middle_and_resizes_small_images():
    x = np.arange(2 * 5 * 6, dtype=np.float32).reshape(2, 5, 6, 1)
    np.testing.assert_array_equal(L.CenterCrop(3, 2)(x), x[:, 1:4, 2:4])
    np.testing.assert_array_equal(L.CenterCrop(4, 3)(x), x[:, 0:4, 1:4])  # int(diff / 2)
    small = L.CenterCrop(8, 3)  # taller than the image: largest 5x1 window (8:3), resized
    want = image_ops.resize(x[:, :, 2:3], 8, 3)
    np.testing.assert_allclose(small(x), want, rtol=1e-6)
    dx = small.backward(np.ones((2, 8, 3, 1), np.float32))
    assert dx[:, :, [0, 1, 3, 4, 5]].sum() == 0 and dx.sum() == pytest.approx(2 * 8 * 3)


@pytest.mark.parametrize("cls", [L.Resizing, L.CenterCrop])
def test_size_errors(cls):
    with pytest.raises(ValueError, match=r"height must be a positive integer, got -2"):
        cls(-2, 3)
    with pytest.raises(ValueError, match=r"width must be a positive integer, got 0"):
        cls(2, 0)
    with pytest.raises(
        ValueError, match=r"expects each example shaped \(H, W, C\).*x\[\.\.\., None\]"
    ):
        cls(2, 2)(np.zeros((1, 4, 4)))
    with pytest.raises(
        ValueError, match="interpolation 'area'; expected one of 'bilinear', 'nearest'"
    ):
        L.Resizing(2, 2, interpolation="area")


def test_preprocessing_layers_first_in_a_model_take_uint8_images(tmp_path):
    x = np.random.default_rng(1).integers(0, 256, (4, 6, 6), dtype=np.uint8)
    model = keras.Sequential(
        [
            L.Input((6, 6, 1)),
            L.Resizing(4, 4),
            L.Rescaling(1 / 255),
            L.CenterCrop(3, 3),
            L.Flatten(),
            L.Dense(2, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, np.array([0, 1, 0, 1]), epochs=1, verbose=0)
    out = model.predict(x)
    assert out.shape == (4, 2) and out.dtype == np.float32
    model.save(tmp_path / "m.slidenet")
    np.testing.assert_array_equal(keras.load_model(tmp_path / "m.slidenet").predict(x), out)
