"""to_fully_convolutional and scan on graph Models: branches, merges and shared layers."""

import numpy as np
import pytest

import slidenet as keras
from slidenet import applications as apps
from slidenet.models.fully_convolutional import network_stride

L = keras.layers


def branchy(shared=True):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 1))
    a = L.Conv2D(3, 3, activation="relu")(inputs)  # 'valid' everywhere: the scan is exact
    b = L.Conv2D(3, 3)(inputs)
    conv = L.Conv2D(3, 1)
    x = L.Concatenate()([conv(a), conv(b) if shared else L.Conv2D(3, 1)(b)])
    x = L.MaxPooling2D(2)(L.Add()([x, L.Conv2D(6, 1)(x)]))
    x = L.Dropout(0.5)(L.Flatten()(x))
    outputs = L.Dense(4, activation="softmax")(L.Dense(5, activation="relu")(x))
    return keras.Model(inputs, outputs)


@pytest.mark.parametrize("shared", [True, False])
def test_scanning_a_graph_equals_the_classifier_on_every_window(shared):
    model = branchy(shared)
    assert network_stride(model) == (2, 2)
    scene = np.random.default_rng(1).random((13, 12, 1)).astype("float32")
    fcn = model.to_fully_convolutional(scene.shape)
    assert isinstance(fcn, keras.Model) and fcn.output_shape == (None, 3, 3, 4)
    if shared:  # a shared layer stays one shared layer
        assert sum(type(layer).__name__ == "Conv2D" for layer in fcn.layers) == 4 + 2
    scores = apps.scan(model, scene, stride=1)
    windows = np.stack([scene[i : i + 8, j : j + 8] for i in range(6) for j in range(5)])
    np.testing.assert_allclose(scores.reshape(-1, 4), model.predict(windows), rtol=1e-5, atol=1e-6)


def test_graph_conversion_errors():
    inputs = keras.Input((6, 6, 1))
    flat = L.Flatten()(L.Conv2D(2, 3)(inputs))
    with pytest.raises(ValueError, match="ends with Flatten"):
        keras.Model(inputs, flat).to_fully_convolutional()
    two = keras.Model(inputs, [flat, L.Dense(2)(flat)])
    with pytest.raises(ValueError, match="2 outputs; only one of each"):
        two.to_fully_convolutional()
