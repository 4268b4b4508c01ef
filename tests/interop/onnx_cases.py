"""Helpers for the ONNX tests (imported by name; not a conftest.py).

* ``CASES``: named one-layer (or few-layer) models covering every padding, stride, dilation,
  pooling and activation the exporter handles; ``build(name)`` makes one with random weights.
* ``randomize(model, seed)``: random weights, positive variances for the batch norms.
* ``ort_predict(path, x)``: ONNX Runtime's output for the NHWC batch ``x``.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

import slidenet
from slidenet import layers as L

__all__ = ["CASES", "TOL", "build", "max_diff", "ort_predict", "randomize"]

#: The acceptance bound of the issue: max |ONNX Runtime - slidenet| per case.
TOL = 1e-4


def randomize(model, seed: int = 0):
    """Random weights on the scale of the initializers (kernels perturbed, biases, gammas, betas
    and moving statistics drawn, variances > 0), so no case passes by zeros; returns model."""
    rng = np.random.default_rng(seed)

    def draw(name, w):
        if name.endswith("variance") or name.endswith("gamma"):
            return rng.uniform(0.5, 1.5, w.shape)
        if name.endswith("kernel"):
            return w + rng.normal(0, 0.5 * (float(w.std()) or 0.5), w.shape)
        return rng.normal(0, 0.2, w.shape)

    for layer in model.layers:
        names = layer.weight_names
        layer.set_weights([draw(n, w) for n, w in zip(names, layer.get_weights(), strict=True)])
    return model


def _seq(shape, *layer_list):
    return slidenet.Sequential([L.Input(shape), *layer_list])


def _conv(shape, k=3, **kw):
    return lambda: _seq(shape, L.Conv2D(3, k, **kw))


def _c1(shape, k=3, **kw):
    return lambda: _seq(shape, L.Conv1D(3, k, **kw))


def _residual(shortcut, strides, shape):
    return lambda: _seq(shape, L.ResidualBlock(4, strides=strides, shortcut=shortcut))


CASES = {
    "conv-valid": _conv((7, 6, 2)),
    "conv-same-s1": _conv((7, 6, 2), padding="same", k=4),
    "conv-same-s2-odd": _conv((7, 7, 2), padding="same", strides=2),
    "conv-same-s2-even": _conv((8, 6, 2), padding="same", strides=2),
    "conv-same-s2-k4": _conv((8, 7, 2), padding="same", strides=2, k=4),
    "conv-same-s3-dil2": _conv((9, 8, 1), padding="same", strides=3, dilation_rate=2),
    "conv-int-pad": _conv((5, 5, 2), padding=2),
    "conv-pair-pad": _conv((5, 6, 2), padding=(1, 2), strides=(2, 1)),
    "conv-asym-pad": _conv((6, 5, 2), padding=((0, 2), (1, 0)), k=(2, 3)),
    "conv-big-pad": _conv((4, 4, 1), padding=4, k=2),
    "conv-dilation": _conv((9, 9, 2), dilation_rate=(2, 3)),
    "conv-relu": _conv((6, 6, 2), activation="relu"),
    "conv-sigmoid": _conv((6, 6, 2), activation="sigmoid", use_bias=False),
    "conv-tanh": _conv((6, 6, 2), activation="tanh"),
    "conv-softmax": _conv((6, 6, 2), activation="softmax", padding="same"),
    "conv1d-valid": _c1((10, 2), k=4),
    "conv1d-same-s2": _c1((11, 2), padding="same", strides=2, activation="relu"),
    "conv1d-pair-pad": _c1((8, 1), padding=(2, 1), dilation_rate=2),
    "conv1d-softmax": _c1((8, 3), activation="softmax"),
    "maxpool-valid": lambda: _seq((7, 7, 2), L.MaxPooling2D(2)),
    "maxpool-same-s2": lambda: _seq((7, 6, 2), L.MaxPooling2D(3, strides=2, padding="same")),
    "avgpool-valid": lambda: _seq((6, 6, 2), L.AveragePooling2D((2, 3), strides=(1, 2))),
    "avgpool-same": lambda: _seq((7, 7, 2), L.AveragePooling2D(2, padding="same")),
    "avgpool-same-overlap": lambda: _seq((5, 6, 1), L.AveragePooling2D(3, 2, padding="same")),
    "sumpool-valid": lambda: _seq((6, 6, 2), L.SumPooling2D(2)),
    "sumpool-same": lambda: _seq((7, 5, 2), L.SumPooling2D(3, strides=2, padding="same")),
    "maxpool1d-same": lambda: _seq((9, 2), L.MaxPooling1D(2, padding="same")),
    "avgpool1d-same": lambda: _seq((9, 2), L.AveragePooling1D(4, strides=3, padding="same")),
    "avgpool1d-valid": lambda: _seq((9, 2), L.AveragePooling1D(3)),
    "global-max-2d": lambda: _seq((5, 4, 3), L.GlobalMaxPooling2D()),
    "global-avg-2d": lambda: _seq((5, 4, 3), L.GlobalAveragePooling2D()),
    "global-max-1d": lambda: _seq((6, 3), L.GlobalMaxPooling1D()),
    "global-avg-1d": lambda: _seq((6, 3), L.GlobalAveragePooling1D()),
    "dense": lambda: _seq((5,), L.Dense(4, activation="tanh")),
    "dense-no-bias": lambda: _seq((5,), L.Dense(4, use_bias=False, activation="softmax")),
    "dense-on-signal": lambda: _seq((6, 3), L.Dense(4, activation="relu")),
    "flatten-dense": lambda: _seq((4, 3, 2), L.Flatten(), L.Dense(5, activation="sigmoid")),
    "reshape": lambda: _seq((4, 6, 1), L.Reshape((6, 4, 1)), L.Conv2D(2, 3)),
    "reshape-signal": lambda: _seq((12,), L.Reshape((-1, 3)), L.Conv1D(2, 2)),
    "dropout": lambda: _seq((6,), L.Dropout(0.3), L.Dense(3)),
    "batchnorm-image": lambda: _seq((4, 4, 3), L.BatchNormalization(epsilon=0.01)),
    "batchnorm-flat": lambda: _seq((6,), L.Dense(4), L.BatchNormalization()),
    "batchnorm-signal": lambda: _seq((5, 3), L.BatchNormalization()),
    "activations": lambda: _seq(
        (5, 5, 2),
        L.Conv2D(3, 2),
        L.ReLU(),
        L.Activation("tanh"),
        L.Activation("sigmoid"),
        L.Activation("softmax"),
    ),
    "residual-identity": _residual("identity", 1, (5, 5, 4)),
    "residual-projection": _residual("projection", 2, (7, 7, 3)),
    "residual-projection-even": _residual("auto", 2, (6, 6, 3)),
}


def build(name: str, seed: int = 0):
    return randomize(CASES[name](), seed)


def example(model, n: int = 3, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, *model.input_shape[1:])).astype(np.float32)


def ort_predict(path, x) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def max_diff(a, b) -> float:
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.abs(a.astype(np.float64) - b).max())
