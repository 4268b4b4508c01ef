"""Activation layers with arguments (Keras 3's ``keras.layers`` activations): LeakyReLU, PReLU,
ELU and Softmax. The math and its backward are in :mod:`slidenet.ops.activations`."""

from __future__ import annotations

from numbers import Real

import numpy as np

from slidenet import initializers
from slidenet._validation import fmt_shape
from slidenet.layers.base import Layer
from slidenet.ops import activations as act_ops


def check_axis(axis, who: str, several: bool = True):
    """``axis`` (an int, or with ``several`` a non-empty list/tuple of ints) as an int or a list
    of ints (what get_config stores), or a TypeError naming ``who``."""

    def is_int(a):
        return isinstance(a, int | np.integer) and not isinstance(a, bool)

    if is_int(axis):
        return int(axis)
    if several and isinstance(axis, list | tuple) and axis and all(is_int(a) for a in axis):
        return [int(a) for a in axis]
    raise TypeError(
        f"{who}: axis must be an int{' or a list of ints' if several else ''}, got {axis!r}."
    )


def resolve_axes(axis, input_shape, who: str) -> tuple[int, ...]:
    """``axis`` (int or list, counted on the batch shape (N, ...) as in Keras, negative from the
    end) as sorted axes 1..rank-1 for one example of ``input_shape``; the batch axis 0 is refused
    (a batch is cut into mini-batches, so nothing may mix its examples)."""
    rank = len(input_shape) + 1
    items = [axis] if isinstance(axis, int) else list(axis)
    axes = []
    for a in items:
        if not -rank <= a < rank or a % rank == 0:
            raise ValueError(
                f"{who}: axis {a} is not a feature axis of input {fmt_shape((None, *input_shape))}"
                f"; use 1..{rank - 1} or -{rank - 1}..-1 (axis 0 is the batch)."
            )
        axes.append(a % rank)
    if len(set(axes)) != len(axes):
        raise ValueError(f"{who}: axis {axis!r} names the same axis twice.")
    return tuple(sorted(axes))


class LeakyReLU(Layer):
    """x if x >= 0 else negative_slope * x; shape unchanged.

    Keras 3's layer default is negative_slope=0.3 (the ``leaky_relu`` activation's is 0.2). The
    Keras 2 name ``alpha`` is accepted for it.
    """

    def __init__(self, negative_slope=0.3, **kwargs):
        if "alpha" in kwargs:  # Keras 2's name (Keras 3 still takes it, with a warning)
            negative_slope = kwargs.pop("alpha")
        super().__init__(**kwargs)
        if isinstance(negative_slope, bool) or not isinstance(negative_slope, Real):
            raise TypeError(
                f"{self.label}: negative_slope must be a number, got {negative_slope!r}."
            )
        if not negative_slope >= 0:
            raise ValueError(
                f"{self.label}: negative_slope must be >= 0 (Keras' rule), got {negative_slope!r}."
            )
        self.negative_slope = float(negative_slope)

    def forward(self, x, training=False):
        y, self._cache = act_ops.leaky_relu_forward(x, self.negative_slope)
        return y

    def backward(self, dy):
        self.grads = []
        return act_ops.leaky_relu_backward(dy, self._cache)

    def get_config(self):
        return {**super().get_config(), "negative_slope": self.negative_slope}


class ELU(Layer):
    """x if x > 0 else alpha * (exp(x) - 1); shape unchanged (Keras' ELU(alpha=1.0))."""

    def __init__(self, alpha=1.0, **kwargs):
        super().__init__(**kwargs)
        if isinstance(alpha, bool) or not isinstance(alpha, Real):
            raise TypeError(f"{self.label}: alpha must be a number, got {alpha!r}.")
        self.alpha = float(alpha)

    def forward(self, x, training=False):
        y, self._cache = act_ops.elu_forward(x, self.alpha)
        return y

    def backward(self, dy):
        self.grads = []
        return act_ops.elu_backward(dy, self._cache)

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha}


class PReLU(Layer):
    """Parametric ReLU: x if x > 0 else alpha * x, with alpha a trained weight.

    alpha has one example's shape (H, W, C for NHWC input), with size 1 on the ``shared_axes``
    (counted on the batch shape, as in Keras): ``shared_axes=[1, 2]`` gives one alpha per channel,
    (1, 1, C), as torch's PReLU(num_parameters=C). Initialised by ``alpha_initializer`` (zeros:
    the layer starts as a ReLU).
    """

    weight_names = ("alpha",)

    def __init__(self, alpha_initializer="zeros", shared_axes=None, **kwargs):
        super().__init__(**kwargs)
        self.alpha_initializer = initializers.get(alpha_initializer)
        if shared_axes is not None:
            shared_axes = check_axis(shared_axes, f"{self.label}: shared_axes")
            shared_axes = [shared_axes] if isinstance(shared_axes, int) else shared_axes
        self.shared_axes = shared_axes

    def build(self, input_shape):
        super().build(input_shape)
        shape = list(input_shape)
        for a in resolve_axes(self.shared_axes or [], input_shape, f"{self.label}: shared_axes"):
            shape[a - 1] = 1
        self.alpha = self.alpha_initializer(tuple(shape), self.dtype)

    def forward(self, x, training=False):
        y, self._cache = act_ops.prelu_forward(x, self.alpha)
        return y

    def backward(self, dy):
        dx, dalpha = act_ops.prelu_backward(dy, self._cache)
        self.grads = [dalpha]
        return dx

    def get_config(self):
        return {
            **super().get_config(),
            "alpha_initializer": initializers.serialize(self.alpha_initializer),
            "shared_axes": self.shared_axes,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["alpha_initializer"] = initializers.deserialize(config["alpha_initializer"])
        return cls(**config)


class Softmax(Layer):
    """Softmax along ``axis`` (an int or a list of ints, counted on the batch shape; the last by
    default); shape unchanged.

    Along the last axis it is ``Activation("softmax")``: a model whose last layer it is computes
    a cross-entropy loss in the fused, numerically stable form (``activation`` is then
    "softmax" and ``logits`` the input). Other axes are differentiated through the softmax.
    """

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = check_axis(axis, self.label)

    def build(self, input_shape):
        super().build(input_shape)
        self._axes = resolve_axes(self.axis, input_shape, self.label)
        last = self._axes == (len(input_shape),)
        self.activation = "softmax" if last else None  # read by the fused loss (training.py)

    def forward(self, x, training=False):
        y, self._cache = act_ops.softmax_forward(x, self._axes)
        self.logits = x if self.activation == "softmax" else None
        return y

    def backward(self, dy, from_logits=False):
        self.grads = []
        if from_logits:  # the loss already differentiated through the softmax
            return dy
        return act_ops.softmax_backward(dy, self._cache, self._axes)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}
