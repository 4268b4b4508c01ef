"""Elementwise activations and softmax, each with its hand-derived backward.

The cache of each is what its derivative needs: ReLU keeps where x > 0; sigmoid, tanh and softmax
keep their output y, because their derivatives are written in y:

    relu'(x) = [x > 0]      sigmoid' = y (1 - y)      tanh' = 1 - y^2
    softmax: dx = y * (dy - sum(dy * y, axis=-1))
"""

from __future__ import annotations

import numpy as np


def relu_forward(x):
    """max(x, 0) elementwise; returns (y, cache) with the cache the mask x > 0."""
    mask = x > 0
    return np.maximum(x, 0, dtype=x.dtype), mask  # not x * mask: relu(-inf) is 0, not NaN


def relu_backward(dy, cache):
    """dx = dy where x > 0, else 0."""
    return dy * cache


def sigmoid_forward(x):
    """1 / (1 + exp(-x)), computed without overflow for large |x|; returns (y, y)."""
    e = np.exp(-np.abs(x))
    y = np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)
    return y, y


def sigmoid_backward(dy, y):
    """dx = dy * y * (1 - y)."""
    return dy * y * (1 - y)


def tanh_forward(x):
    """tanh(x); returns (y, y)."""
    y = np.tanh(x)
    return y, y


def tanh_backward(dy, y):
    """dx = dy * (1 - y^2)."""
    return dy * (1 - y * y)


def softmax_forward(x, axis=-1):
    """exp(x) / sum(exp(x)) along the last axis, shifted by the max so exp never overflows.

    >>> softmax_forward(np.array([[0.0, np.log(3.0)]]))[0]
    array([[0.25, 0.75]])
    """
    z = np.exp(x - x.max(axis=axis, keepdims=True))
    y = z / z.sum(axis=axis, keepdims=True)
    return y, y


def softmax_backward(dy, y):
    """Jacobian-vector product of softmax: dx = y * (dy - sum(dy * y))."""
    return y * (dy - (dy * y).sum(axis=-1, keepdims=True))


def linear_forward(x):
    """The identity (no activation); returns (x, None)."""
    return x, None


def linear_backward(dy, cache):
    """dx = dy."""
    return dy


def relu(x):
    """max(x, 0) elementwise."""
    return relu_forward(x)[0]


def sigmoid(x):
    """1 / (1 + exp(-x)) elementwise."""
    return sigmoid_forward(x)[0]


def tanh(x):
    """tanh(x) elementwise."""
    return np.tanh(x)


def softmax(x):
    """Softmax along the last axis."""
    return softmax_forward(x)[0]


FORWARD = {
    "relu": relu_forward,
    "sigmoid": sigmoid_forward,
    "tanh": tanh_forward,
    "softmax": softmax_forward,
    "linear": linear_forward,
}
BACKWARD = {
    "relu": relu_backward,
    "sigmoid": sigmoid_backward,
    "tanh": tanh_backward,
    "softmax": softmax_backward,
    "linear": linear_backward,
}
