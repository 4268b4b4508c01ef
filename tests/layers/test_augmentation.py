"""Augmentation layers: active only in training, seeded bit for bit, Keras' conventions (angles,
shifts, zooms, crops, contrast, brightness), exact backward passes with the draw frozen, errors,
and models: uint8 images, save/load of the generators, and an exactly resumed training run."""

import json

import numpy as np
import pytest

import slidenet as keras
from slidenet import layers as L
from slidenet.ops import image_ops
from slidenet.utils import gradcheck

RANDOM = [
    lambda: L.RandomFlip(seed=1),
    lambda: L.RandomRotation(0.2, seed=1),
    lambda: L.RandomTranslation(0.2, 0.3, seed=1),
    lambda: L.RandomZoom(0.3, seed=1),
    lambda: L.RandomContrast(0.4, seed=1),
    lambda: L.RandomBrightness(0.3, seed=1),
]
IDS = ["flip", "rotation", "translation", "zoom", "contrast", "brightness"]


@pytest.fixture
def images():
    return np.random.default_rng(0).uniform(0, 255, (4, 6, 6, 2)).astype(np.float32)


@pytest.mark.parametrize("make", RANDOM, ids=IDS)
def test_identity_at_inference_random_in_training_and_seeded(make, images):
    layer = make()
    assert layer(images) is images or np.array_equal(layer(images), images)
    np.testing.assert_array_equal(layer.backward(images), images)
    first, second = layer(images, training=True), layer(images, training=True)
    assert first.dtype == np.float32 and not np.array_equal(first, second)
    again = make()  # same seed: the same draws, bit for bit
    np.testing.assert_array_equal(again(images, training=True), first)
    np.testing.assert_array_equal(again(images, training=True), second)
    clone = type(layer).from_config(json.loads(json.dumps(layer.get_config())))
    np.testing.assert_array_equal(clone(images, training=True), first)


def test_unseeded_layers_follow_set_random_seed(images):
    keras.utils.set_random_seed(5)
    a = L.RandomRotation(0.3)(images, training=True)
    keras.utils.set_random_seed(5)
    np.testing.assert_array_equal(L.RandomRotation(0.3)(images, training=True), a)


@pytest.mark.parametrize(
    ("mode", "kinds"),
    [("horizontal", {"h", "-"}), ("vertical", {"v", "-"}), ("horizontal_and_vertical", None)],
)
def test_random_flip_flips_each_image_with_probability_one_half(mode, kinds):
    x = np.random.default_rng(1).normal(size=(40, 3, 4, 1)).astype(np.float32)
    y = L.RandomFlip(mode, seed=2)(x, training=True)
    seen = set()
    for a, b in zip(x, y, strict=True):
        options = {"-": a, "h": a[:, ::-1], "v": a[::-1], "hv": a[::-1, ::-1]}
        seen |= {k for k, v in options.items() if np.array_equal(v, b)}
    assert seen == (kinds or {"-", "h", "v", "hv"})


def test_random_flip_on_its_own_takes_uint8_images():
    x = np.random.default_rng(3).integers(0, 256, (5, 4, 4, 3), dtype=np.uint8)
    y = L.RandomFlip("horizontal", seed=1)(x, training=True)
    assert y.dtype == np.float32
    assert all(
        np.array_equal(b, a) or np.array_equal(b, a[:, ::-1]) for a, b in zip(x, y, strict=True)
    )


def test_rotation_angles_follow_keras_sign_and_range():
    x = np.random.default_rng(4).normal(size=(2, 5, 5, 1))
    quarter = L.RandomRotation((0.25, 0.25), fill_mode="constant", dtype="float64")
    np.testing.assert_allclose(quarter(x, training=True), np.rot90(x, 1, (1, 2)), atol=1e-12)
    back = L.RandomRotation((-0.25, -0.25), fill_mode="constant", dtype="float64")
    np.testing.assert_allclose(back(x, training=True), np.rot90(x, -1, (1, 2)), atol=1e-12)
    layer = L.RandomRotation((-0.1, 0.3), seed=0)
    t = layer.transforms(500, 5, 5)
    angles = np.arctan2(t[:, 3], t[:, 0])
    assert -0.1 * 2 * np.pi <= angles.min() < -0.05 * 2 * np.pi
    assert 0.25 * 2 * np.pi < angles.max() <= 0.3 * 2 * np.pi


def test_translation_by_fixed_fractions_shifts_whole_pixels():
    x = np.random.default_rng(5).normal(size=(2, 4, 4, 1)).astype(np.float32)
    layer = L.RandomTranslation((0.25, 0.25), (-0.5, -0.5), fill_mode="constant", fill_value=-7)
    want = np.full_like(x, -7.0)
    want[:, 1:, :2] = x[:, :3, 2:]  # 1 row down, 2 columns left
    np.testing.assert_array_equal(layer(x, training=True), want)


def test_zoom_keeps_the_aspect_ratio_without_width_factor():
    t = L.RandomZoom((-0.5, 0.5), seed=3).transforms(50, 5, 7)
    np.testing.assert_array_equal(t[:, 0], t[:, 4])
    assert 0.5 <= t[:, 0].min() < 0.7 and 1.3 < t[:, 0].max() <= 1.5
    t2 = L.RandomZoom(0.5, width_factor=(0.1, 0.2), seed=3).transforms(50, 5, 7)
    assert np.all((t2[:, 0] >= 1.1) & (t2[:, 0] <= 1.2))
    x = np.random.default_rng(6).normal(size=(1, 5, 5, 1)).astype(np.float32)
    np.testing.assert_array_equal(L.RandomZoom((0, 0))(x, training=True), x)


@pytest.mark.parametrize(
    "make",
    [
        lambda: L.RandomRotation(0.4, seed=9, fill_mode="wrap", interpolation="nearest"),
        lambda: L.RandomTranslation(0.4, 0.2, seed=9, fill_mode="constant", fill_value=3.0),
        lambda: L.RandomZoom(0.5, 0.3, seed=9, fill_mode="nearest"),
    ],
    ids=["rotation", "translation", "zoom"],
)
def test_warping_layers_sample_as_the_op_does(make, images):
    layer = make()
    state = layer.rng.bit_generator.state
    y = layer(images, training=True)
    layer.rng.bit_generator.state = state
    t = layer.transforms(len(images), 6, 6)
    want = image_ops.affine_transform(
        images, t, layer.interpolation, layer.fill_mode, layer.fill_value
    )
    np.testing.assert_array_equal(y, want)


def test_random_crop_windows_in_training_and_resized_centre_at_inference():
    x = np.random.default_rng(7).normal(size=(3, 6, 8, 1)).astype(np.float32)
    layer = L.RandomCrop(3, 4, seed=2)
    starts = set()
    for _ in range(30):
        y = layer(x, training=True)
        found = [
            (i, j)
            for i in range(4)
            for j in range(5)
            if np.array_equal(x[:, i : i + 3, j : j + 4], y)
        ]
        assert len(found) == 1  # one window, the same for the whole batch
        starts |= set(found)
    assert len(starts) > 5
    dx = layer.backward(np.ones((3, 3, 4, 1), np.float32))
    assert dx.sum() == 3 * 3 * 4
    # inference: the whole 6x8 image has the aspect ratio 3:4, so it is resized
    np.testing.assert_allclose(layer(x), image_ops.resize(x, 3, 4), rtol=1e-6)
    # an image smaller than the window: the same in training
    small = L.RandomCrop(8, 4, seed=2)
    np.testing.assert_allclose(
        small(x, training=True), image_ops.resize(x[:, :, 2:5], 8, 4), rtol=1e-6
    )


def test_contrast_scales_around_the_channel_mean_and_clips():
    x = np.random.default_rng(8).uniform(0, 1, (5, 4, 4, 3))
    layer = L.RandomContrast((0.2, 0.5), value_range=(-10, 10), seed=1, dtype="float64")
    y = layer(x, training=True)
    mean = x.mean(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(y.mean(axis=(1, 2), keepdims=True), mean)
    c = (y - mean) / (x - mean)
    assert np.allclose(c, c[:, :1, :1, :1])  # one factor per image, for every channel
    assert np.all((c >= 0.8) & (c <= 1.5)) and np.ptp(c[:, 0, 0, 0]) > 0.05
    clipped = L.RandomContrast(1.0, value_range=(0.2, 0.8), seed=1)(x, training=True)
    assert clipped.min() >= 0.2 and clipped.max() <= 0.8


def test_brightness_adds_one_delta_per_image_and_clips():
    x = np.random.default_rng(9).uniform(0.3, 0.7, (6, 3, 3, 2))
    layer = L.RandomBrightness((-0.2, 0.1), value_range=(0, 1), seed=4, dtype="float64")
    delta = layer(x, training=True) - x
    assert np.allclose(delta, delta[:, :1, :1, :1])
    assert np.all((delta >= -0.2) & (delta <= 0.1))
    y = L.RandomBrightness(1.0, seed=4)(x * 255, training=True)
    assert y.min() >= 0 and y.max() <= 255 and ((y == 0) | (y == 255)).any()


GRADCHECK_LAYERS = {
    f"{name}-{fill}-{interp}": (
        lambda cls=cls, fill=fill, interp=interp: cls(
            0.4, fill_mode=fill, interpolation=interp, fill_value=0.5, seed=11
        )
    )
    for name, cls in [("rotation", L.RandomRotation), ("zoom", L.RandomZoom)]
    for fill in image_ops.FILL_MODES
    for interp in image_ops.INTERPOLATIONS
}
GRADCHECK_LAYERS.update(
    {
        "translation": lambda: L.RandomTranslation((-0.3, 0.3), 0.35, seed=11),
        "flip": lambda: L.RandomFlip(seed=11),
        "crop-training": lambda: L.RandomCrop(3, 4, seed=11),
        "contrast": lambda: L.RandomContrast(0.6, value_range=(0.1, 0.9), seed=11),
        "brightness": lambda: L.RandomBrightness(0.3, value_range=(0.2, 0.8), seed=11),
    }
)


@pytest.mark.parametrize("make", GRADCHECK_LAYERS.values(), ids=GRADCHECK_LAYERS.keys())
def test_backward_matches_finite_differences_with_the_draw_frozen(make):
    x = np.random.default_rng(10).uniform(0, 1, (3, 5, 6, 2))
    layer = make()
    errors = gradcheck(layer, x, training=True, max_entries=400)
    assert errors == {"dx": pytest.approx(0, abs=1e-6)}


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: L.RandomRotation(1.5), r"factor must be a number in \[-1, 1\]"),
        (lambda: L.RandomRotation((0.1, 0.2, 0.3)), r"or a pair \(lower, upper\)"),
        (lambda: L.RandomRotation(0.1, fill_mode="mirror"), "fill_mode 'mirror'; expected one"),
        (lambda: L.RandomZoom(0.1, interpolation="cubic"), "'bilinear', 'nearest'"),
        (lambda: L.RandomZoom(0.1, width_factor=-2), r"width_factor must be a number in \[-1"),
        (lambda: L.RandomTranslation(0.1, "wide"), "width_factor must be"),
        (lambda: L.RandomTranslation(1.2, 0.1), "height_factor must be"),
        (lambda: L.RandomTranslation(0.1, 0.1, fill_value=None), "fill_value must be a number"),
        (lambda: L.RandomFlip("diagonal"), "'horizontal', 'vertical', 'horizontal_and_vertical'"),
        (lambda: L.RandomFlip(seed=-1), "seed must be None or an int >= 0"),
        (lambda: L.RandomCrop(-3, 2), "height must be a positive integer, got -3"),
        (lambda: L.RandomContrast(-0.2), r"factor must be a number in \[0, 1\]"),
        (lambda: L.RandomContrast(0.2, value_range=(1, 1)), r"value_range \(1, 1\) is empty"),
        (lambda: L.RandomBrightness(0.2, value_range=255), r"value_range must be a pair"),
    ],
)
def test_bad_arguments_get_clear_errors(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_images_must_have_a_channel_axis():
    with pytest.raises(ValueError, match=r"RandomFlip 'flip'.*\(H, W, C\)"):
        L.RandomFlip(name="flip")(np.zeros((2, 4, 4)))


# ----- in models --------------------------------------------------------------------------------
def augmented_model():
    keras.utils.set_random_seed(3)
    model = keras.Sequential(
        [
            L.Input((8, 8, 1)),
            L.RandomFlip(),
            L.RandomRotation(0.1),
            L.Rescaling(1 / 255),
            L.Conv2D(2, 3, activation="relu"),
            L.Flatten(),
            L.Dense(2, activation="softmax"),
        ]
    )
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    return model


@pytest.fixture
def digits():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (24, 8, 8), dtype=np.uint8), rng.integers(0, 2, 24)


def test_training_resumed_from_a_file_repeats_the_draws_exactly(tmp_path, digits):
    """2 epochs straight == 1 epoch, save, load, 1 more: same weights bit for bit, because the
    file keeps each augmentation layer's generator (and the shuffling generator)."""
    x, y = digits
    straight = augmented_model()
    straight.fit(x, y, batch_size=8, epochs=2, verbose=0)
    first = augmented_model()
    first.fit(x, y, batch_size=8, epochs=1, verbose=0)
    first.save(tmp_path / "e1.slidenet")
    resumed = keras.load_model(tmp_path / "e1.slidenet")
    for a, b in zip(first.layers[:2], resumed.layers[:2], strict=True):
        assert a.rng.bit_generator.state == b.rng.bit_generator.state
    resumed.fit(x, y, batch_size=8, epochs=2, initial_epoch=1, verbose=0)
    for a, b in zip(straight.get_weights(), resumed.get_weights(), strict=True):
        assert np.array_equal(a, b)
    # not vacuous: with the rotation layer's generator rewound, the run ends elsewhere
    other = keras.load_model(tmp_path / "e1.slidenet")
    other.layers[1].rng = np.random.default_rng(0)
    other.fit(x, y, batch_size=8, epochs=2, initial_epoch=1, verbose=0)
    assert not all(
        np.array_equal(a, b)
        for a, b in zip(straight.get_weights(), other.get_weights(), strict=True)
    )


def test_augmentation_is_off_in_predict_and_evaluate(tmp_path, digits):
    x, y = digits
    model = augmented_model()
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    p = model.predict(x)
    np.testing.assert_array_equal(model.predict(x), p)  # no random draws at inference
    model.save(tmp_path / "m.slidenet")
    loaded = keras.load_model(tmp_path / "m.slidenet")
    np.testing.assert_array_equal(loaded.predict(x), p)
    assert loaded.evaluate(x, y, verbose=0) == model.evaluate(x, y, verbose=0)


def test_augmentation_layers_in_a_functional_model(tmp_path):
    inputs = keras.Input((6, 6, 1))
    h = L.RandomZoom(0.2, seed=1)(L.RandomTranslation(0.1, 0.1, seed=2)(inputs))
    h = L.RandomContrast(0.3, seed=3)(L.RandomCrop(4, 4, seed=4)(h))
    model = keras.Model(inputs, L.Dense(1)(L.Flatten()(L.RandomBrightness(0.1, seed=5)(h))))
    model.compile("sgd", "mse")
    x = np.random.default_rng(1).uniform(0, 255, (8, 6, 6, 1)).astype(np.float32)
    model.fit(x, np.zeros((8, 1)), epochs=1, verbose=0)
    model.save(tmp_path / "f.slidenet")
    loaded = keras.load_model(tmp_path / "f.slidenet")
    states = {la.name: la.rng.bit_generator.state for la in model.layers if hasattr(la, "rng")}
    assert len(states) == 5
    for la in loaded.layers:
        if la.name in states:
            assert la.rng.bit_generator.state == states[la.name]
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
