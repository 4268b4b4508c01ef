"""The Layer contract: parameters under Keras names, a forward that calls ops, a hand-written
backward.

A layer is built once it knows the shape of one example (``build(input_shape)``, batch axis
excluded); that is where it checks that it fits its input and creates its weights. Calling it runs
the
forward pass and keeps what the backward pass needs; ``backward(dy)`` returns dx and leaves the
parameter gradients in ``layer.grads``, aligned with ``layer.weights``.
"""

from __future__ import annotations

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


class Layer:
    """Base class of all layers.

    Attributes:
        name: unique name used in messages, summaries and model files.
        weights: the live parameter arrays, in the order of ``weight_names``.
        grads: gradients from the last ``backward``, aligned with ``weights``.
        input_shape / output_shape: (None, ...) once built, the batch axis as None (Keras).
    """

    weight_names: tuple[str, ...] = ()

    def __init__(self, name=None, input_shape=None, dtype="float32", trainable=True, **kwargs):
        if "input_dim" in kwargs:
            input_shape = (kwargs.pop("input_dim"),)
        kwargs.pop("batch_input_shape", None)
        if kwargs:
            bad = ", ".join(sorted(kwargs))
            raise TypeError(f"{type(self).__name__}: unexpected keyword argument(s): {bad}.")
        self.name = name or unique_name(_snake(type(self).__name__))
        self.input_shape_arg = None if input_shape is None else tuple(int(s) for s in input_shape)
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
        input_shape = tuple(int(s) for s in input_shape)
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
        x = np.asarray(x)
        if not self.built:
            self.build(x.shape[1:])
        elif tuple(x.shape[1:]) != self._in:
            raise ValueError(
                f"{self.label} was built for input {fmt_shape(self.input_shape)} "
                f"but got {fmt_shape(x.shape)}."
            )
        if x.dtype != self.dtype:
            x = x.astype(self.dtype)
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

    def get_weights(self) -> list[np.ndarray]:
        """Copies of the parameters, in ``weight_names`` order."""
        return [w.copy() for w in self.weights]

    def set_weights(self, weights) -> None:
        """Replace the parameters (same count and shapes as get_weights); cast to the layer
        dtype.
        """
        if not self.built:
            raise ValueError(
                f"{self.label} is not built yet; add it to a model with an input shape."
            )
        weights = list(weights)
        if len(weights) != len(self.weight_names):
            raise ValueError(
                f"{self.label} has {len(self.weight_names)} weight arrays "
                f"({', '.join(self.weight_names) or 'none'}), got {len(weights)}."
            )
        for name, new in zip(self.weight_names, weights, strict=True):
            old = getattr(self, name)
            new = np.asarray(new)
            if new.shape != old.shape:
                raise ValueError(
                    f"{self.label}: {name} has shape {fmt_shape(old.shape)}, "
                    f"got {fmt_shape(new.shape)}."
                )
            if new.dtype.kind not in "fiu":
                raise TypeError(f"{self.label}: {name} must be numeric, got dtype {new.dtype}.")
            setattr(self, name, np.array(new, dtype=self.dtype))

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
