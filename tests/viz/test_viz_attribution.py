"""slidenet.viz attribution: activation maps, occlusion, saliency, feature visualisation."""

from __future__ import annotations

import numpy as np
import pytest
from viz_helpers import tiny_cnn

import slidenet as keras
import slidenet.viz as viz
from slidenet import ops


def _numeric_gradient(f, x, eps=1e-6):
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + eps
        plus = f(x)
        x[idx] = old - eps
        minus = f(x)
        x[idx] = old
        grad[idx] = (plus - minus) / (2 * eps)
    return grad


def _logits(model, x):
    model.predict(x[None])
    return model.layers[-1].logits[0]


@pytest.mark.parametrize("score", ["logit", "probability"])
@pytest.mark.parametrize("class_index", [0, 2])
def test_saliency_equals_central_finite_difference(score, class_index):
    model = tiny_cnn(size=8, classes=3, dtype="float64", channels=2, seed=3)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (8, 8, 2))

    def f(image):
        if score == "logit":
            return _logits(model, image)[class_index]
        return model.predict(image[None])[0, class_index]

    expected = _numeric_gradient(f, x.copy())
    got = viz.saliency_map(model, x, class_index, score=score)
    assert got.shape == x.shape and got.dtype == np.float64
    assert np.abs(expected).max() > 1e-3  # the check is not comparing zeros
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("class_index", [0, 1])
def test_saliency_of_one_sigmoid_output_is_the_gradient_of_p_or_one_minus_p(class_index):
    keras.utils.set_random_seed(5)
    model = keras.Sequential(
        [
            keras.layers.Input((5, 5, 1)),
            keras.layers.Conv2D(2, 3, activation="tanh", dtype="float64"),
            keras.layers.Flatten(dtype="float64"),
            keras.layers.Dense(1, activation="sigmoid", dtype="float64"),
        ]
    )
    x = np.random.default_rng(1).uniform(0, 1, (5, 5, 1))
    sign = 1.0 if class_index == 1 else -1.0
    expected = _numeric_gradient(lambda im: sign * model.predict(im[None])[0, 0], x.copy())
    got = viz.saliency_map(model, x, class_index, score="probability")
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-10)


def _corner_model(corner, size=12, s=4):
    """Hand-set: a 3x3 box blur with ReLU, then a dense layer whose class-1 weights are +1 on
    the s x s block in ``corner`` and 0 elsewhere (class 0 has all-zero weights)."""
    model = keras.Sequential(
        [
            keras.layers.Input((size, size, 1)),
            keras.layers.Conv2D(1, 3, padding="same", activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    mask = np.zeros((size, size))
    rows = slice(0, s) if corner[0] == "top" else slice(size - s, size)
    cols = slice(0, s) if corner[1] == "left" else slice(size - s, size)
    mask[rows, cols] = 1.0
    kernel = np.zeros((size * size, 2))
    kernel[:, 1] = mask.ravel()
    model.set_weights([np.full((3, 3, 1, 1), 1 / 9), np.zeros(1), kernel, np.array([0.0, -10.0])])
    image = np.full((size, size, 1), 0.1)
    image[rows, cols] = 1.0  # the evidence
    return model, image


@pytest.mark.parametrize(
    "corner", [("top", "left"), ("top", "right"), ("bottom", "left"), ("bottom", "right")]
)
def test_occlusion_map_peaks_where_the_evidence_is(corner):
    model, image = _corner_model(corner)
    assert model.predict(image[None])[0].argmax() == 1
    heat = viz.occlusion_map(model, image, patch=3, stride=1, fill=0.5)
    assert heat.shape == (12, 12)
    r, c = np.unravel_index(np.argmax(heat), heat.shape)
    assert (r < 4) == (corner[0] == "top") and (r >= 8) == (corner[0] == "bottom")
    assert (c < 4) == (corner[1] == "left") and (c >= 8) == (corner[1] == "right")
    # far from the corner, hiding pixels changes nothing
    opposite = (
        (slice(8, 12) if corner[0] == "top" else slice(0, 4)),
        (slice(8, 12) if corner[1] == "left" else slice(0, 4)),
    )
    assert heat.max() > 0.3
    assert np.abs(heat[opposite]).max() < 1e-6


def test_occlusion_of_a_trained_model_on_the_corner_data_peaks_in_its_corner():
    from viz_helpers import trained_tiny

    model, x, y = trained_tiny(epochs=4)
    assert np.mean(model.predict(x).argmax(1) == y) > 0.9
    for i in (0, 1):  # class 0: square bottom right; class 1: top left
        heat = viz.occlusion_map(model, x[i], int(y[i]), patch=4, stride=2)
        r, c = np.unravel_index(np.argmax(heat), heat.shape)
        if y[i] == 1:
            assert r < 6 and c < 6
        else:
            assert r >= 6 and c >= 6


def test_occlusion_covers_every_pixel_and_checks_arguments():
    model, image = _corner_model(("top", "left"), size=10)
    heat = viz.occlusion_map(model, image, patch=4, stride=3)  # positions 0, 3, 6 (last fits)
    assert np.all(np.isfinite(heat))
    with pytest.raises(ValueError, match="patch=11 is larger than the 10x10 image"):
        viz.occlusion_map(model, image, patch=11)
    with pytest.raises(ValueError, match="class_index=5 but model .* has 2 classes"):
        viz.occlusion_map(model, image, class_index=5)
    with pytest.raises(ValueError, match=r"image has shape \(9, 9\) but model"):
        viz.occlusion_map(model, np.zeros((9, 9)))


def test_activation_maps_are_each_layers_own_output():
    model = tiny_cnn(size=8, dtype="float64")
    x = np.random.default_rng(2).uniform(0, 1, (8, 8))  # (H, W) for a one-channel model
    maps = viz.activation_maps(model, x)
    assert [type(layer).__name__ for layer, _ in maps] == ["Conv2D", "MaxPooling2D", "Conv2D"]
    conv = model.layers[0]
    expected = np.maximum(ops.conv2d(x[None, ..., None], conv.kernel, conv.bias, padding="same"), 0)
    np.testing.assert_allclose(maps[0][1], expected[0])
    np.testing.assert_allclose(maps[1][1], ops.max_pool2d(expected, 2)[0])
    assert maps[2][1].shape == (2, 2, 3)


def test_feature_visualization_increases_the_filters_mean_activation():
    model = tiny_cnn(size=10, seed=4)
    for layer, f in ((0, 1), (2, 0)):
        image, scores = viz.feature_visualization(model, layer, f, steps=15, step_size=0.1)
        assert image.shape == (10, 10, 1) and 0 <= image.min() and image.max() <= 1
        assert scores[-1] > scores[0] + 0.05
        y = image[None]
        for lay in model.layers[: layer + 1]:
            y = lay(y)
        assert y[..., f].mean() == pytest.approx(scores[-1], rel=1e-5)


def test_feature_visualization_revives_a_filter_that_is_dead_at_the_start():
    model = tiny_cnn(size=6, seed=0)
    conv = model.layers[0]
    kernel, bias = conv.get_weights()
    kernel[..., 0] = 1 / 9
    bias[0] = -0.7  # grey input gives 0.5 - 0.7 < 0 everywhere; white gives 1 - 0.7 > 0
    conv.set_weights([kernel, bias])
    _, scores = viz.feature_visualization(model, 0, 0, steps=20, step_size=0.1)
    assert scores[0] == 0.0
    # the best possible: interior outputs 1 - 0.7, borders of the 'same' padding stay at 0
    assert scores[-1] > 0.12


def test_feature_visualization_checks_its_arguments():
    model = tiny_cnn(size=6)
    with pytest.raises(ValueError, match="has 4 channels; filter_index=4 is not in 0..3"):
        viz.feature_visualization(model, 0, 4)
    with pytest.raises(ValueError, match="layer index 9 is out of range"):
        viz.feature_visualization(model, 9, 0)
    with pytest.raises(ValueError, match="score must be 'logit' or 'probability'"):
        viz.saliency_map(model, np.zeros((6, 6, 1)), score="prob")
