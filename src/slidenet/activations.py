"""Activation functions by name, as Keras' ``keras.activations``.

Each is a plain function on arrays, with Keras 3's arguments and defaults (``leaky_relu(x,
negative_slope=0.2)``, ``elu(x, alpha=1.0)``, ``gelu(x, approximate=False)``, ``softmax(x,
axis=-1)``); layers use the forward/backward pairs in :mod:`slidenet.ops.activations`. A name
(``activation="gelu"``) selects the function with its default arguments; ``swish`` and ``silu``
are one function.
"""

from __future__ import annotations

from slidenet._validation import unknown_name
from slidenet.ops.activations import (
    BACKWARD,
    FORWARD,
    elu,
    gelu,
    hard_sigmoid,
    leaky_relu,
    relu,
    selu,
    sigmoid,
    silu,
    softmax,
    softplus,
    swish,
    tanh,
)


def linear(x):
    """The identity."""
    return x


def get(identifier) -> str:
    """Normalise an activation identifier to its name ('relu', ..., 'linear' for None)."""
    if identifier is None:
        return "linear"
    if callable(identifier) and getattr(identifier, "__name__", None) in FORWARD:
        return identifier.__name__
    if isinstance(identifier, str):
        key = identifier.lower()
        if key in FORWARD:
            return key
        raise unknown_name("activation", identifier, FORWARD)
    raise TypeError(
        f"activation must be one of {sorted(FORWARD)} (a name or slidenet.activations function), "
        f"got {identifier!r}."
    )


__all__ = [
    "relu",
    "sigmoid",
    "tanh",
    "softmax",
    "linear",
    "leaky_relu",
    "elu",
    "selu",
    "softplus",
    "silu",
    "swish",
    "gelu",
    "hard_sigmoid",
    "get",
    "FORWARD",
    "BACKWARD",
]
