"""Models, images and a live server for the explore tests (imported by name; not a conftest.py).

* ``digits_cnn()``: a small conv net (conv-pool-conv-pool-dense) trained for one seeded epoch on
  the bundled MNIST sample; cached, so every test file of a session shares one.
* ``odd_cnn()``: untrained, with strides, dilation, 'same' and explicit padding, groups, average
  pooling, batch norm and a tanh dense layer: every branch of the unit panels.
* ``graph_cnn()``: a functional Model with two branches merged by Add.
* ``layer_outputs(model, x)``: each layer's own output, ``layer(x)`` one by one (the reference).
* ``png(array)``: PNG bytes of a float image in [0, 1]; ``bomb_png(w, h)``: a small PNG file
  that claims w x h pixels.
* ``live_server(app)``: uvicorn serving ``app`` on a free port in a thread; yields the base URL.
"""

from __future__ import annotations

import contextlib
import functools
import io
import struct
import threading
import time
import zlib

import numpy as np
from PIL import Image

import slidenet as keras
from slidenet.datasets import mnist_sample

__all__ = [
    "bomb_png",
    "digits",
    "digits_cnn",
    "graph_cnn",
    "layer_outputs",
    "live_server",
    "odd_cnn",
    "png",
]


@functools.lru_cache(maxsize=1)
def digits():
    """The bundled test digits as (x uint8 (1000, 28, 28), y (1000,))."""
    _, (x, y) = mnist_sample.load_data()
    return x, y.astype(np.int64)


@functools.lru_cache(maxsize=1)
def digits_cnn():
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.layers.Input((28, 28, 1)),
            keras.layers.Conv2D(6, 5, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Conv2D(12, 5, activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Flatten(),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ],
        name="digits_cnn",
    )
    (x, y), _ = mnist_sample.load_data()
    model.compile(keras.optimizers.Adam(0.003), "sparse_categorical_crossentropy", ["accuracy"])
    model.fit(x[:, :, :, None] / 255.0, y, batch_size=32, epochs=1, verbose=0)
    return model


def odd_cnn():
    keras.utils.set_random_seed(1)
    return keras.Sequential(
        [
            keras.layers.Input((15, 13, 3)),
            keras.layers.Conv2D(4, 3, strides=2, padding="same", activation="relu"),
            keras.layers.Conv2D(4, 3, dilation_rate=2, padding=((1, 2), (0, 1)), groups=2),
            keras.layers.BatchNormalization(),
            keras.layers.AveragePooling2D(2, padding="same"),
            keras.layers.Conv2D(5, 2, activation="tanh", use_bias=False),
            keras.layers.MaxPooling2D((2, 1), strides=1),
            keras.layers.Flatten(),
            keras.layers.Dense(6, activation="tanh"),
            keras.layers.Dense(3),  # no softmax: the page applies one, with a note
        ],
        name="odd_cnn",
    )


def graph_cnn():
    keras.utils.set_random_seed(2)
    inputs = keras.Input((12, 12, 1), name="image")
    a = keras.layers.Conv2D(3, 3, padding="same", activation="relu", name="branch_a")(inputs)
    b = keras.layers.Conv2D(3, 1, activation="sigmoid", name="branch_b")(inputs)
    merged = keras.layers.Add(name="merge")([a, b])
    pooled = keras.layers.MaxPooling2D(2, name="pool")(merged)
    flat = keras.layers.Flatten(name="flat")(pooled)
    outputs = keras.layers.Dense(4, activation="softmax", name="scores")(flat)
    return keras.Model(inputs, outputs, name="two_branches")


def layer_outputs(model, x) -> dict[str, np.ndarray]:
    """{layer name: its output for one example x (H, W, C)}, computed layer by layer."""
    if isinstance(model, keras.Model):
        names = [layer.name for layer in model.layers[1:]]
        probe = keras.Model(model.inputs, [model.get_layer(n).output for n in names])
        outs = probe(np.asarray(x, np.float32)[None])
        return {n: o[0] for n, o in zip(names, outs, strict=True)}
    out, h = {}, np.asarray(x, np.float32)[None]
    for layer in model.layers:
        h = layer(h)
        out[layer.name] = h[0]
    return out


def png(image) -> bytes:
    """PNG bytes of a float image (H, W) or (H, W, 3) in [0, 1]."""
    pixels = np.clip(np.round(np.asarray(image, dtype=np.float64) * 255), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))


def bomb_png(width: int, height: int, rows: int | None = None) -> bytes:
    """A grayscale PNG of width x height black pixels, a few kB however large it is (with
    ``rows``, only that many rows of pixel data follow the header: a truncated file)."""
    line = b"\x00" * (width + 1)  # filter byte 0, then the pixels
    compressor = zlib.compressobj(9)
    todo = height if rows is None else rows
    parts = []
    while todo > 0:  # compress in blocks of rows, never holding the whole image
        n = min(256, todo)
        parts.append(compressor.compress(line * n))
        todo -= n
    parts.append(compressor.flush())
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", b"".join(parts))
        + _chunk(b"IEND", b"")
    )


@contextlib.contextmanager
def live_server(app):
    """Serve ``app`` with uvicorn on 127.0.0.1 and a free port; yields 'http://127.0.0.1:PORT'."""
    import uvicorn

    from slidenet.explore.server import bind

    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="error", lifespan="off", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        sock.close()
