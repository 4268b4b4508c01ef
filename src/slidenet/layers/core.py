"""Core layers: Dense, Flatten, Reshape, Dropout, Activation, ReLU and the Input marker."""

from __future__ import annotations

import numpy as np

from slidenet import initializers
from slidenet._validation import fmt_shape, positive_int
from slidenet.layers.base import ActivationMixin, Layer
from slidenet.ops.dense import dense_backward, dense_forward
from slidenet.ops.dropout import dropout_backward, dropout_forward
from slidenet.utils.random import spawn_generator


class InputLayer(Layer):
    """Declares the shape of one example; ``Input(shape=(28, 28, 1))`` in a Sequential's layers."""

    def __init__(self, shape=None, **kwargs):
        if shape is None:
            raise ValueError("Input: give the shape of one example, e.g. Input(shape=(28, 28, 1)).")
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        super().__init__(input_shape=shape, **kwargs)
        self.shape = self.input_shape_arg

    def forward(self, x, training=False):
        return x

    def backward(self, dy):
        return dy

    def get_config(self):
        config = super().get_config()
        config["shape"] = list(config.pop("input_shape"))
        return config


def Input(shape=None, name=None, dtype="float32", **kwargs):  # noqa: N802 - Keras' name
    """A symbolic tensor for one input of a model: ``Input(shape=(28, 28, 1))`` (no batch axis).

    Call layers on it to build a graph, then ``Model(inputs, outputs)``; or put it first in a
    ``Sequential([...])`` to declare the input shape. The tensor's ``shape`` is (None, *shape).
    """
    from slidenet.models.graph import input_tensor

    if shape is None and "batch_shape" in kwargs:
        shape = tuple(kwargs.pop("batch_shape"))[1:]
    if shape is None:
        raise ValueError("Input: give the shape of one example, e.g. Input(shape=(28, 28, 1)).")
    if kwargs:
        raise TypeError(f"Input: unexpected keyword argument(s): {', '.join(sorted(kwargs))}.")
    return input_tensor(shape, name=name, dtype=dtype)


class Dense(ActivationMixin, Layer):
    """Fully connected layer: y = act(x @ kernel + bias).

    Input (N, D_in) -> output (N, units); kernel (D_in, units), bias (units,): (D_in + 1) * units
    parameters. On inputs with more axes (N, ..., D_in) it acts on the last axis, as in Keras.
    """

    def __init__(
        self,
        units,
        activation=None,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = positive_int(units, f"{self.label}: units")
        self._set_activation(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.weight_names = ("kernel", "bias") if self.use_bias else ("kernel",)

    def compute_output_shape(self, input_shape):
        if len(input_shape) == 0:
            raise ValueError(f"{self.label} needs examples with at least one axis, got ().")
        return (*input_shape[:-1], self.units)

    def build(self, input_shape):
        super().build(input_shape)
        self.kernel = self.kernel_initializer((input_shape[-1], self.units), self.dtype)
        if self.use_bias:
            self.bias = self.bias_initializer((self.units,), self.dtype)

    def forward(self, x, training=False):
        x2 = x.reshape(-1, x.shape[-1])
        z, self._cache = dense_forward(x2, self.kernel, self.bias if self.use_bias else None)
        return self._activate(z.reshape(*x.shape[:-1], self.units))

    def backward(self, dy, from_logits=False):
        dz = self._deactivate(dy, from_logits)
        dx, dw, db = dense_backward(dz.reshape(-1, self.units), self._cache)
        self.grads = [dw, db] if self.use_bias else [dw]
        return dx.reshape(*dy.shape[:-1], self.kernel.shape[0])

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "activation": self.activation,
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
        }


class Flatten(Layer):
    """(N, H, W, D) -> (N, H*W*D), in NHWC (row-major) order."""

    def compute_output_shape(self, input_shape):
        return (int(np.prod(input_shape)),)

    def forward(self, x, training=False):
        return x.reshape(x.shape[0], *self._out)  # not -1: a batch of 0 examples is fine

    def backward(self, dy):
        self.grads = []
        return dy.reshape(dy.shape[0], *self._in)


class Reshape(Layer):
    """Reshape each example to ``target_shape`` (one entry may be -1)."""

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        self.target_shape = tuple(int(s) for s in target_shape)

    def compute_output_shape(self, input_shape):
        size = int(np.prod(input_shape))
        target = list(self.target_shape)
        if target.count(-1) > 1:
            raise ValueError(f"{self.label}: at most one -1 in target_shape {self.target_shape}.")
        if -1 in target:
            known = int(np.prod([t for t in target if t != -1]))
            if known == 0 or size % known:
                raise ValueError(
                    f"{self.label}: cannot reshape {fmt_shape(input_shape)} ({size} values) "
                    f"to {fmt_shape(self.target_shape)}."
                )
            target[target.index(-1)] = size // known
        if int(np.prod(target)) != size:
            raise ValueError(
                f"{self.label}: cannot reshape {fmt_shape(input_shape)} ({size} values) to "
                f"{fmt_shape(self.target_shape)} ({int(np.prod(target))} values)."
            )
        return tuple(target)

    def forward(self, x, training=False):
        return x.reshape(x.shape[0], *self._out)

    def backward(self, dy):
        self.grads = []
        return dy.reshape(dy.shape[0], *self._in)

    def get_config(self):
        return {**super().get_config(), "target_shape": list(self.target_shape)}


class Dropout(Layer):
    """Inverted dropout: in training zero each value with probability ``rate`` and scale the rest by
    1 / (1 - rate); the identity at inference. Shape unchanged."""

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate < 1:
            raise ValueError(f"{self.label}: rate must be a number in [0, 1), got {rate!r}.")
        self.rate = float(rate)
        self.seed = seed
        self.rng = spawn_generator(seed)

    def forward(self, x, training=False):
        self._mask = None
        if not training or self.rate == 0:
            return x
        y, self._mask = dropout_forward(x, self.rate, self.rng)
        return y

    def backward(self, dy):
        self.grads = []
        return dy if self._mask is None else dropout_backward(dy, self._mask)

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


class Activation(ActivationMixin, Layer):
    """Applies an activation ('relu', 'sigmoid', 'tanh', 'softmax', 'linear'); shape unchanged."""

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self._set_activation(activation)

    def forward(self, x, training=False):
        return self._activate(x)

    def backward(self, dy, from_logits=False):
        self.grads = []
        return self._deactivate(dy, from_logits)

    def get_config(self):
        return {**super().get_config(), "activation": self.activation}


class ReLU(Activation):
    """max(x, 0) as a layer."""

    def __init__(self, **kwargs):
        kwargs.pop("activation", None)
        super().__init__("relu", **kwargs)

    def get_config(self):
        config = super().get_config()
        config.pop("activation")
        return config
