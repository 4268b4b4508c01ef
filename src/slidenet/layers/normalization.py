"""BatchNormalization, LayerNormalization and GroupNormalization (see
slidenet.ops.normalization)."""

from __future__ import annotations

from numbers import Real

import numpy as np

from slidenet import initializers
from slidenet._validation import fmt_shape
from slidenet.layers.activation import check_axis, resolve_axes
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


class _AffineNormalization(Layer):
    """Shared arguments of LayerNormalization and GroupNormalization: epsilon, and the trained
    gamma (``scale``) and beta (``center``), in Keras' order gamma, beta."""

    def __init__(
        self,
        epsilon=1e-3,
        center=True,
        scale=True,
        beta_initializer="zeros",
        gamma_initializer="ones",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(epsilon, bool) or not isinstance(epsilon, Real) or not epsilon > 0:
            raise ValueError(f"{self.label}: epsilon must be a number > 0, got {epsilon!r}.")
        self.epsilon = float(epsilon)
        self.center, self.scale = bool(center), bool(scale)
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.weight_names = ("gamma",) * self.scale + ("beta",) * self.center

    def _make_weights(self, shape):
        if self.scale:
            self.gamma = self.gamma_initializer(tuple(shape), self.dtype)
        if self.center:
            self.beta = self.beta_initializer(tuple(shape), self.dtype)

    def _params(self):
        return (self.gamma if self.scale else None), (self.beta if self.center else None)

    def _set_grads(self, dgamma, dbeta):
        self.grads = [g for g in (dgamma, dbeta) if g is not None]

    def get_config(self):
        return {
            **super().get_config(),
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            "beta_initializer": initializers.serialize(self.beta_initializer),
            "gamma_initializer": initializers.serialize(self.gamma_initializer),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("beta_initializer", "gamma_initializer"):
            if key in config:
                config[key] = initializers.deserialize(config[key])
        return cls(**config)


class LayerNormalization(_AffineNormalization):
    """Normalise each example over ``axis`` (Keras: an int or a list, counted on the batch shape;
    the last axis by default), then scale by gamma and shift by beta.

    gamma and beta have the shape of the normalised axes, in order: (C,) for axis=-1, (H, W, C)
    for axis=[1, 2, 3] on NHWC input (Keras' shapes). Statistics are per example, so training and
    inference compute the same thing. Defaults are Keras' (epsilon=1e-3; torch's layer_norm uses
    1e-5).
    """

    def __init__(self, axis=-1, epsilon=1e-3, center=True, scale=True, **kwargs):
        super().__init__(epsilon, center, scale, **kwargs)
        self.axis = check_axis(axis, self.label)

    def build(self, input_shape):
        super().build(input_shape)
        self._axes = resolve_axes(self.axis, input_shape, self.label)
        self._make_weights(tuple(input_shape[a - 1] for a in self._axes))

    def forward(self, x, training=False):
        gamma, beta = self._params()
        y, self._cache = bn_ops.layernorm_forward(x, gamma, beta, self._axes, self.epsilon)
        return y

    def backward(self, dy):
        dx, dgamma, dbeta = bn_ops.layernorm_backward(dy, self._cache)
        self._set_grads(dgamma, dbeta)
        return dx

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


class GroupNormalization(_AffineNormalization):
    """Group normalisation (Wu and He, 2018): the channels (``axis``, the last by default) are cut
    into ``groups`` groups of neighbouring channels, and each example's group is normalised over
    its channels and all other axes ((H, W, C / G) for NHWC input); then gamma and beta (C,).

    ``groups`` must divide the number of channels; ``groups=-1`` means one group per channel
    (instance normalisation), 1 normalises each example as a whole. Keras' defaults (groups=32,
    epsilon=1e-3; torch's group_norm uses 1e-5).
    """

    def __init__(self, groups=32, axis=-1, epsilon=1e-3, center=True, scale=True, **kwargs):
        super().__init__(epsilon, center, scale, **kwargs)
        if isinstance(groups, bool) or not isinstance(groups, int | np.integer):
            raise TypeError(f"{self.label}: groups must be an int, got {groups!r}.")
        if groups < 1 and groups != -1:
            raise ValueError(
                f"{self.label}: groups must be a positive int (or -1: one group per channel), "
                f"got {groups}."
            )
        self.groups = int(groups)
        self.axis = check_axis(axis, self.label, several=False)

    def build(self, input_shape):
        super().build(input_shape)
        (self._axis,) = resolve_axes(self.axis, input_shape, self.label)
        c = input_shape[self._axis - 1]
        g = c if self.groups == -1 else self.groups
        if g > c or c % g:
            divisors = [d for d in range(1, c + 1) if c % d == 0]
            problem = (
                f"{g} groups is more than the {c} channels"
                if g > c
                else f"{g} groups do not divide the {c} channels ({c} % {g} = {c % g})"
            )
            raise ValueError(
                f"{self.label}: {problem} of input {fmt_shape((None, *input_shape))} (axis "
                f"{self.axis}). Use groups that divide {c}: "
                f"{', '.join(map(str, divisors))} (or -1, one per channel)."
            )
        self._groups = g
        self._make_weights((c,))

    def forward(self, x, training=False):
        gamma, beta = self._params()
        y, self._cache = bn_ops.groupnorm_forward(
            x, gamma, beta, self._groups, self._axis, self.epsilon
        )
        return y

    def backward(self, dy):
        dx, dgamma, dbeta = bn_ops.groupnorm_backward(dy, self._cache)
        self._set_grads(dgamma, dbeta)
        return dx

    def get_config(self):
        return {**super().get_config(), "groups": self.groups, "axis": self.axis}
