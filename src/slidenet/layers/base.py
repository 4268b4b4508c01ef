"""The Layer contract: parameters under Keras names, a forward that calls ops, a hand-written
backward.

A layer is built once it knows the shape of one example (``build(input_shape)``, batch axis
excluded); that is where it checks that it fits its input and creates its weights. Calling it runs
the
forward pass and keeps what the backward pass needs; ``backward(dy)`` returns dx and leaves the
parameter gradients in ``layer.grads``, aligned with ``layer.weights``.
"""

from __future__ import annotations

import functools
import re
from collections import defaultdict

import numpy as np

from slidenet import activations as _activations
from slidenet import initializers
from slidenet._validation import fmt_shape
from slidenet.ops.activations import BACKWARD, FORWARD

_name_counts: dict[str, int] = defaultdict(int)


def _snake(name: str) -> str:
    s = re.sub(r"([a-z])([A-Z])", r"\1_\2", name)
    return (
        re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", s)
        .lower()
        .replace("2_d", "2d")
        .replace("1_d", "1d")
    )


def unique_name(prefix: str) -> str:
    """Keras-style automatic names: conv2d, conv2d_1, conv2d_2, ..."""
    count = _name_counts[prefix]
    _name_counts[prefix] += 1
    return prefix if count == 0 else f"{prefix}_{count}"


def example_shape(shape, what: str) -> tuple[int, ...]:
    """The shape of one example as a tuple of positive ints, or a ValueError naming ``what``.

    An example needs at least one axis and no axis of size 0 (a batch may be empty, an example may
    not).
    """
    try:
        items = tuple(shape)
    except TypeError:
        items = None
    if not items or any(isinstance(s, bool) or not isinstance(s, int | np.integer) for s in items):
        raise ValueError(
            f"{what} must be one example's shape, a tuple of positive ints such as (28, 28, 1) "
            f"(no batch axis), got {shape!r}."
        )
    if min(items) < 1:
        raise ValueError(
            f"{what} {fmt_shape(items)} has an axis of size {min(items)}; every axis of an "
            "example needs size >= 1 (only the batch may be empty)."
        )
    return tuple(int(s) for s in items)


def batch_array(x, who: str) -> np.ndarray:
    """``x`` as a numeric array with a batch axis (N, ...), or a TypeError/ValueError naming
    ``who``. Bool and integer arrays are accepted (the layer casts them to its dtype)."""
    try:
        x = np.asarray(x)
    except ValueError:  # ragged nested lists
        raise ValueError(
            f"{who}: x is not a rectangular array: its rows have different lengths."
        ) from None
    if x.dtype.kind not in "biuf":
        raise TypeError(
            f"{who}: x has dtype {x.dtype}; expected real numbers (float, integer or bool). "
            "Convert it with x.astype('float32')."
        )
    if x.ndim < 2:
        raise ValueError(
            f"{who} expects a batch of examples shaped (N, ...), got an array of shape "
            f"{fmt_shape(x.shape)}. Add the batch axis, e.g. x[None]."
        )
    return x


def _recording_forward(forward):
    @functools.wraps(forward)
    def wrapper(self, x, *args, **kwargs):
        self._batch = x.shape[0]
        return forward(self, x, *args, **kwargs)

    return wrapper


def _checked_backward(backward):
    @functools.wraps(backward)
    def wrapper(self, dy, *args, **kwargs):
        if getattr(self, "_batch", None) is None:
            raise RuntimeError(
                f"{self.label}: backward() needs a forward pass first; call the layer on a batch."
            )
        dy = np.asarray(dy)
        want = (self._batch, *self._out)
        if dy.dtype.kind not in "biuf" or dy.shape != want:
            raise ValueError(
                f"{self.label}: dy must be shaped like the last output {fmt_shape(want)} with real "
                f"numbers, got {fmt_shape(dy.shape)} of dtype {dy.dtype}."
            )
        if self._batch == 0:  # an empty batch: nothing flowed forward, nothing flows back
            self.grads = [None if "moving_" in n else np.zeros_like(w) for n, w in self._named()]
            return np.zeros((0, *self._in), dy.dtype)
        return backward(self, dy, *args, **kwargs)

    return wrapper


class Layer:
    """Base class of all layers.

    Attributes:
        name: unique name used in messages, summaries and model files.
        weights: the live parameter arrays, in the order of ``weight_names``.
        grads: gradients from the last ``backward``, aligned with ``weights``.
        input_shape / output_shape: (None, ...) once built, the batch axis as None (Keras).
    """

    weight_names: tuple[str, ...] = ()

    def __init_subclass__(cls, **kwargs):
        """Every subclass's forward records the batch size and its backward checks dy against it
        (a wrong dy gets a message naming the layer, not a NumPy broadcasting error)."""
        super().__init_subclass__(**kwargs)
        if "forward" in cls.__dict__:
            cls.forward = _recording_forward(cls.__dict__["forward"])
        if "backward" in cls.__dict__:
            cls.backward = _checked_backward(cls.__dict__["backward"])

    def __init__(self, name=None, input_shape=None, dtype="float32", trainable=True, **kwargs):
        if "input_dim" in kwargs:
            input_shape = (kwargs.pop("input_dim"),)
        kwargs.pop("batch_input_shape", None)
        if kwargs:
            bad = ", ".join(sorted(kwargs))
            raise TypeError(f"{type(self).__name__}: unexpected keyword argument(s): {bad}.")
        self.name = name or unique_name(_snake(type(self).__name__))
        self.input_shape_arg = None
        if input_shape is not None:
            self.input_shape_arg = example_shape(input_shape, f"{self.label}: input_shape")
        self.dtype = np.dtype(dtype)
        self.trainable = bool(trainable)
        self.built = False
        self.grads: list[np.ndarray] = []
        self._in: tuple[int, ...] | None = None
        self._out: tuple[int, ...] | None = None

    # ----- shapes and building -------------------------------------------------------------
    @property
    def label(self) -> str:
        """How messages name this layer: Conv2D 'conv2d_1'."""
        return f"{type(self).__name__} '{self.name}'"

    @property
    def input_shape(self):
        return None if self._in is None else (None, *self._in)

    @property
    def output_shape(self):
        return None if self._out is None else (None, *self._out)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        """Shape of one output example for one input example (no batch axis)."""
        return tuple(input_shape)

    def build(self, input_shape) -> None:
        """Check the layer fits ``input_shape`` (one example), create weights, set output shape."""
        input_shape = example_shape(input_shape, f"{self.label}: input shape")
        self._out = tuple(self.compute_output_shape(input_shape))
        self._in = input_shape
        self.built = True

    def _expect_rank(self, input_shape, rank: int, layout: str, hint: str = "") -> None:
        if len(input_shape) != rank:
            raise ValueError(
                f"{self.label} expects each example shaped {layout}, got {fmt_shape(input_shape)}."
                + (f" {hint}" if hint else "")
            )

    # ----- running -------------------------------------------------------------------------
    def __call__(self, x, training=False):
        x = batch_array(x, self.label)
        if not self.built:
            self.build(x.shape[1:])
        elif tuple(x.shape[1:]) != self._in:
            raise ValueError(
                f"{self.label} was built for input {fmt_shape(self.input_shape)} "
                f"but got {fmt_shape(x.shape)}."
            )
        if x.dtype != self.dtype:
            x = x.astype(self.dtype)
        if x.shape[0] == 0:  # a batch of 0 examples gives 0 outputs, as in Keras
            self._batch = 0
            return np.zeros((0, *self._out), self.dtype)
        return self.forward(x, training)

    def forward(self, x, training=False):
        """Forward pass of a batch; keeps what backward needs."""
        raise NotImplementedError

    def backward(self, dy):
        """Backward pass: dy (like the output) -> dx (like the input); fills ``self.grads``."""
        raise NotImplementedError

    # ----- weights -------------------------------------------------------------------------
    @property
    def weights(self) -> list[np.ndarray]:
        return [getattr(self, n) for n in self.weight_names] if self.built else []

    def _named(self):
        return list(zip(self.weight_names, self.weights, strict=True))

    def get_weights(self) -> list[np.ndarray]:
        """Copies of the parameters, in ``weight_names`` order."""
        return [w.copy() for w in self.weights]

    def set_weights(self, weights) -> None:
        """Replace the parameters (same count and shapes as get_weights); cast to the layer
        dtype.
        """
        for name, new in zip(self.weight_names, self._checked_weights(weights), strict=True):
            setattr(self, name, np.array(new, dtype=self.dtype))

    def _checked_weights(self, weights) -> list[np.ndarray]:
        """``weights`` as arrays, checked against this built layer's count, shapes and kinds."""
        if not self.built:
            raise ValueError(
                f"{self.label} is not built yet; add it to a model with an input shape."
            )
        weights = [np.asarray(w) for w in weights]
        if len(weights) != len(self.weight_names):
            raise ValueError(
                f"{self.label} has {len(self.weight_names)} weight arrays "
                f"({', '.join(self.weight_names) or 'none'}), got {len(weights)}."
            )
        for name, old, new in zip(self.weight_names, self.weights, weights, strict=True):
            if new.shape != old.shape:
                raise ValueError(
                    f"{self.label}: {name} has shape {fmt_shape(old.shape)}, "
                    f"got {fmt_shape(new.shape)}."
                )
            if new.dtype.kind not in "fiu":
                raise TypeError(f"{self.label}: {name} must be numeric, got dtype {new.dtype}.")
        return weights

    def count_params(self) -> int:
        return int(sum(w.size for w in self.weights))

    # ----- config --------------------------------------------------------------------------
    def get_config(self) -> dict:
        """Constructor arguments that rebuild this layer (JSON-serialisable)."""
        config = {"name": self.name, "dtype": self.dtype.name, "trainable": self.trainable}
        if self.input_shape_arg is not None:
            config["input_shape"] = list(self.input_shape_arg)
        return config

    @classmethod
    def from_config(cls, config: dict):
        config = dict(config)
        for key in ("kernel_initializer", "bias_initializer"):
            if key in config:
                config[key] = initializers.deserialize(config[key])
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{self.label} output_shape={self.output_shape}>"


class ActivationMixin:
    """Adds ``activation=`` to a layer: y = act(core(x)); backward goes through act first.

    For softmax and sigmoid the pre-activation ``logits`` are kept so the model can use the fused,
    numerically stable cross-entropy and enter the backward pass below the activation.
    """

    def _set_activation(self, activation):
        self.activation = _activations.get(activation)

    def _activate(self, z):
        y, self._act_cache = FORWARD[self.activation](z)
        self.logits = z if self.activation in ("softmax", "sigmoid") else None
        return y

    def _deactivate(self, dy, from_logits=False):
        return dy if from_logits else BACKWARD[self.activation](dy, self._act_cache)
