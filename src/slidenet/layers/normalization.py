"""BatchNormalization (see slidenet.ops.normalization)."""

from __future__ import annotations

import numpy as np

from slidenet.layers.base import Layer
from slidenet.ops import normalization as bn_ops


class BatchNormalization(Layer):
    """Normalise each channel (last axis) with batch statistics in training, running ones at
    inference.

    Weights: gamma, beta, moving_mean, moving_variance (D,) each (Keras' order); only gamma and beta
    are trained. Running statistics follow Keras: after each training batch,

        moving_mean     = momentum * moving_mean     + (1 - momentum) * mean(batch)
        moving_variance = momentum * moving_variance + (1 - momentum) * var(batch)

    with var the batch's *biased* variance (divided by n, the values per channel), the same one
    that normalises the batch. PyTorch's ``momentum`` is 1 - this one (Keras' 0.99 is torch's 0.01)
    and its running variance uses the unbiased variance (divided by n - 1), so after a step from v0
    torch's running variance exceeds this one by (1 - momentum) * var / (n - 1). Defaults are
    Keras' (momentum=0.99, epsilon=1e-3), not torch's (0.1, i.e. 0.9 here, and 1e-5).
    tests/layers/test_batchnorm_torch.py checks both modes and the statistics against
    torch.nn.BatchNorm2d.
    """

    weight_names = ("gamma", "beta", "moving_mean", "moving_variance")

    def __init__(self, momentum=0.99, epsilon=1e-3, **kwargs):
        super().__init__(**kwargs)
        if not 0 <= momentum <= 1:
            raise ValueError(f"{self.label}: momentum must be in [0, 1], got {momentum!r}.")
        if not epsilon > 0:
            raise ValueError(f"{self.label}: epsilon must be > 0, got {epsilon!r}.")
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)

    def build(self, input_shape):
        super().build(input_shape)
        d = input_shape[-1]
        self.gamma = np.ones(d, self.dtype)
        self.beta = np.zeros(d, self.dtype)
        self.moving_mean = np.zeros(d, self.dtype)
        self.moving_variance = np.ones(d, self.dtype)

    def forward(self, x, training=False):
        if not training:
            self._cache, self._x = None, x
            return bn_ops.batchnorm_inference(
                x, self.gamma, self.beta, self.moving_mean, self.moving_variance, self.epsilon
            )
        y, (mean, var), self._cache = bn_ops.batchnorm_forward(
            x, self.gamma, self.beta, self.epsilon
        )
        m = self.momentum
        self.moving_mean[...] = m * self.moving_mean + (1 - m) * mean
        self.moving_variance[...] = m * self.moving_variance + (1 - m) * var
        return y

    def backward(self, dy):
        """dx, and gradients for gamma and beta (None for the moving statistics, not trained)."""
        if self._cache is not None:
            dx, dgamma, dbeta = bn_ops.batchnorm_backward(dy, self._cache)
        else:  # inference mode: a fixed affine map per channel
            inv_std = 1 / np.sqrt(self.moving_variance + self.epsilon)
            axes = tuple(range(dy.ndim - 1))
            dx = dy * (self.gamma * inv_std).astype(dy.dtype)
            dgamma = (dy * (self._x - self.moving_mean) * inv_std).sum(axis=axes)
            dbeta = dy.sum(axis=axes)
        self.grads = [dgamma, dbeta, None, None]
        return dx

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "epsilon": self.epsilon}
