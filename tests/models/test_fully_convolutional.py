"""to_fully_convolutional and scan: one pass over a canvas equals the classifier on every window."""

from __future__ import annotations

import numpy as np
import pytest

import slidenet as keras
from slidenet import applications as apps
from slidenet import layers as L
from slidenet.models.fully_convolutional import network_stride


def valid_classifier(head="flatten"):
    """A 16x16x2 classifier with 'valid' convolutions: stride S = 4, random non-trivial weights."""
    keras.utils.set_random_seed(3)
    tail = (
        [L.Flatten(), L.Dense(8, activation="relu"), L.Dropout(0.5)]
        if head == "flatten"
        else [L.GlobalMaxPooling2D()]
    )
    model = keras.Sequential(
        [
            L.Input((16, 16, 2)),
            L.Conv2D(4, 3, activation="relu"),
            L.MaxPooling2D(2),
            L.Conv2D(6, 3, activation="relu"),
            L.BatchNormalization(),
            L.MaxPooling2D(2),
            *tail,
            L.Dense(3, activation="softmax"),
        ]
    )
    rng = np.random.default_rng(0)
    bn = model.layers[3]
    bn.set_weights([rng.uniform(0.5, 2, 6), rng.normal(size=6), rng.normal(size=6) * 0.1,
                    rng.uniform(0.5, 2, 6)])  # fmt: skip
    return model


def brute_force(model, image, sy, sx):
    h, w = model.input_shape[1:3]
    rows = range(0, image.shape[0] - h + 1, sy)
    cols = range(0, image.shape[1] - w + 1, sx)
    windows = np.stack([image[i : i + h, j : j + w] for i in rows for j in cols])
    return model.predict(windows).reshape(len(rows), len(cols), -1)


@pytest.mark.parametrize("head", ["flatten", "global_max"])
@pytest.mark.parametrize("stride", [None, 1, 2, 8, (3, 5)], ids=["S", "1", "2", "8", "3x5"])
def test_scan_equals_the_classifier_on_every_window(head, stride):
    model = valid_classifier(head)
    assert network_stride(model) == (4, 4)
    image = np.random.default_rng(1).uniform(0, 1, size=(27, 30, 2)).astype(np.float32)
    scores = apps.scan(model, image, stride=stride)
    sy, sx = (4, 4) if stride is None else (stride, stride) if isinstance(stride, int) else stride
    want = brute_force(model, image, sy, sx)
    assert scores.shape == want.shape == ((27 - 16) // sy + 1, (30 - 16) // sx + 1, 3)
    np.testing.assert_allclose(scores, want, rtol=1e-5, atol=1e-6)
    assert len(np.unique(scores.argmax(-1))) > 1 or np.ptp(scores) > 1e-3  # not a constant map


def test_converted_model_layers_weights_and_one_pass():
    model = valid_classifier()
    fcn = model.to_fully_convolutional((24, 20, 2))
    kinds = [type(layer).__name__ for layer in fcn.layers]
    assert kinds == ["Conv2D", "MaxPooling2D", "Conv2D", "BatchNormalization", "MaxPooling2D",
                     "Conv2D", "Dropout", "Conv2D"]  # fmt: skip
    head, last = fcn.layers[5], fcn.layers[7]
    assert head.kernel_size == (2, 2) and head.kernel.shape == (2, 2, 6, 8)
    assert head.activation == "relu" and last.kernel_size == (1, 1) and last.activation == "softmax"
    assert fcn.output_shape == (None, 3, 2, 3)  # (24 - 16) / 4 + 1, (20 - 16) / 4 + 1
    assert fcn.count_params() == model.count_params()
    np.testing.assert_array_equal(head.kernel.reshape(-1, 8), model.layers[6].kernel)
    # the copy shares no arrays with the classifier
    model.layers[0].kernel[...] = 0
    assert np.abs(fcn.layers[0].kernel).sum() > 0
    # softmax stays per position: each position's scores sum to 1
    x = np.random.default_rng(2).normal(size=(2, 24, 20, 2))
    np.testing.assert_allclose(fcn.predict(x).sum(-1), 1.0, rtol=1e-5)


def test_at_its_own_size_the_converted_model_is_the_classifier_even_with_same_padding():
    keras.utils.set_random_seed(0)
    for model in (
        apps.resnet_small((12, 12, 1), classes=4, filters=(4, 8), blocks=1),
        apps.vgg_small((12, 12, 1), classes=4, filters=(4,), dense=6),
        apps.lenet5((28, 28, 1)),
    ):
        x = np.random.default_rng(0).uniform(size=(3, *model.input_shape[1:])).astype(np.float32)
        fcn = model.to_fully_convolutional()
        assert fcn.output_shape[1:3] == (1, 1)
        np.testing.assert_allclose(fcn.predict(x)[:, 0, 0], model.predict(x), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(
    "model, shape, pattern",
    [
        (lambda: valid_classifier(), (15, 20, 2), r"input_shape must be \(H, W, 2\) with H >= 16"),
        (lambda: valid_classifier(), (20, 20, 3), r"input_shape must be \(H, W, 2\)"),
        (
            lambda: keras.Sequential([L.Input((4, 4, 1)), L.Reshape((16,)), L.Dense(2)]),
            None,
            r"Reshape 'reshape.*' has no fully convolutional equivalent",
        ),
        (
            lambda: keras.Sequential(
                [L.Input((4, 4, 1)), L.Flatten(), L.BatchNormalization(), L.Dense(2)]
            ),  # fmt: skip
            None,
            r"sits between Flatten and Dense",
        ),
        (lambda: apps.keyword_scanner((32, 1)), None, r"only image models \(H, W, C\) convert"),
    ],
)
def test_errors(model, shape, pattern):
    with pytest.raises(ValueError, match=pattern):
        model().to_fully_convolutional(shape)


def test_scan_checks_the_image():
    model = valid_classifier()
    with pytest.raises(ValueError, match=r"scan: image must be \(H, W, 2\) with H >= 16"):
        apps.scan(model, np.zeros((10, 20, 2)))
    with pytest.raises(ValueError, match="scan: stride must be"):
        apps.scan(model, np.zeros((20, 20, 2)), stride=0)
