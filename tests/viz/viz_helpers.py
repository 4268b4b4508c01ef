"""Tiny models and data for the slidenet.viz tests (imported by name; not a conftest.py).

* ``corner_data(n, size, seed)``: images with a bright square in the top-left corner (class 1)
  or in the bottom-right corner (class 0), plus noise.
* ``tiny_cnn(size, classes, dtype)``: Conv-ReLU-MaxPool-Conv-ReLU-Flatten-Dense(softmax).
* ``trained_tiny(...)``: that model after a short seeded fit on ``corner_data`` (with history).
* ``png_size_and_std(data)``: (width, height) and pixel standard deviation of PNG bytes.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

import slidenet as keras


def corner_data(n=120, size=12, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 0.2, (n, size, size, 1))
    y = np.arange(n) % 2
    s = size // 3
    for i in range(n):
        if y[i] == 1:
            x[i, :s, :s] += 0.8
        else:
            x[i, -s:, -s:] += 0.8
    return np.clip(x, 0, 1).astype(np.float32), y.astype(np.int64)


def tiny_cnn(size=12, classes=2, dtype="float32", channels=1, seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.layers.Input((size, size, channels)),
            keras.layers.Conv2D(4, 3, padding="same", activation="relu", dtype=dtype),
            keras.layers.MaxPooling2D(2, dtype=dtype),
            keras.layers.Conv2D(3, 3, activation="relu", dtype=dtype),
            keras.layers.Flatten(dtype=dtype),
            keras.layers.Dense(classes, activation="softmax", dtype=dtype),
        ]
    )


def trained_tiny(epochs=3, n=120, size=12):
    x, y = corner_data(n, size)
    model = tiny_cnn(size)
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy", ["accuracy"])
    model.fit(x, y, batch_size=16, epochs=epochs, verbose=0, validation_split=0.25)
    return model, x, y


def png_size_and_std(data: bytes):
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        pixels = np.asarray(image.convert("RGB"), dtype=np.float64)
        return image.size, float(pixels.std())
