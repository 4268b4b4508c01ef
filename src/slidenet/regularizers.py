"""Weight regularizers (Keras 3 names): a penalty added to the loss, and its gradient.

    L1(l1)        penalty l1 * sum |w|             gradient l1 * sign(w)
    L2(l2)        penalty l2 * sum w^2             gradient 2 * l2 * w     (Keras: no 1/2)
    L1L2(l1, l2)  both

Given to a layer as ``kernel_regularizer=regularizers.l2(1e-4)`` (or 'l2', or ``bias_``, ``gamma_``,
``beta_``, ``depthwise_``, ``pointwise_``, ``alpha_regularizer``). During ``fit`` the penalties of
every regularized weight are added to the loss that is reported and minimised, and their
gradients to the weights' gradients before the optimizer step; ``evaluate`` reports the same sum.

>>> import numpy as np
>>> reg = L2(0.5)
>>> reg(np.array([1.0, -2.0])), reg.gradient(np.array([1.0, -2.0]))
(2.5, array([ 1., -2.]))
"""

from __future__ import annotations

import math

import numpy as np

from slidenet._validation import unknown_name


def _factor(value, name, who):
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise ValueError(f"{who}: {name} must be a number >= 0, got {value!r}.")
    if not math.isfinite(value):
        raise ValueError(f"{who}: {name} must be finite, got {value!r}.")
    return float(value)


class Regularizer:
    """Base class: ``reg(w) -> float`` penalty and ``reg.gradient(w) -> array`` like w."""

    def __call__(self, w) -> float:
        raise NotImplementedError

    def gradient(self, w) -> np.ndarray:
        raise NotImplementedError

    def get_config(self) -> dict:
        return {}


class L1L2(Regularizer):
    """l1 * sum |w| + l2 * sum w^2."""

    def __init__(self, l1=0.0, l2=0.0):
        self.l1 = _factor(l1, "l1", type(self).__name__)
        self.l2 = _factor(l2, "l2", type(self).__name__)

    def __call__(self, w) -> float:
        w = np.asarray(w, np.float64)
        return float(self.l1 * np.abs(w).sum() + self.l2 * np.square(w).sum())

    def gradient(self, w) -> np.ndarray:
        g = np.zeros_like(w)
        if self.l1:
            g += np.asarray(self.l1 * np.sign(w), w.dtype)
        if self.l2:
            g += np.asarray(2 * self.l2 * w, w.dtype)
        return g

    def get_config(self) -> dict:
        return {"l1": self.l1, "l2": self.l2}


class L1(L1L2):
    """l1 * sum |w| (the subgradient 0 at w = 0)."""

    def __init__(self, l1=0.01):
        super().__init__(l1=l1)

    def get_config(self) -> dict:
        return {"l1": self.l1}


class L2(L1L2):
    """l2 * sum w^2."""

    def __init__(self, l2=0.01):
        super().__init__(l2=l2)

    def get_config(self) -> dict:
        return {"l2": self.l2}


def l1(l1=0.01) -> L1:  # noqa: D103 - Keras' function names
    return L1(l1)


def l2(l2=0.01) -> L2:  # noqa: D103
    return L2(l2)


def l1_l2(l1=0.01, l2=0.01) -> L1L2:  # noqa: D103
    return L1L2(l1, l2)


_BY_NAME = {"l1": L1, "l2": L2, "l1_l2": L1L2}
_CLASSES = {"L1": L1, "L2": L2, "L1L2": L1L2}


def get(identifier) -> Regularizer | None:
    """None, a Regularizer, or a name ('l1', 'l2', 'l1_l2' with Keras' default factors)."""
    if identifier is None or isinstance(identifier, Regularizer):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        if identifier.lower() not in _BY_NAME:
            raise unknown_name("regularizer", identifier, _BY_NAME)
        cls = _BY_NAME[identifier.lower()]
        return cls(0.01, 0.01) if cls is L1L2 else cls()
    raise TypeError(f"regularizers must be names or Regularizer objects, got {identifier!r}.")


def serialize(reg) -> dict | None:
    if reg is None:
        return None
    if type(reg) not in _CLASSES.values():
        raise ValueError(f"cannot serialise custom regularizer {reg!r}; use L1, L2 or L1L2.")
    return {"class_name": type(reg).__name__, "config": reg.get_config()}


def deserialize(config) -> Regularizer | None:
    if config is None:
        return None
    if not isinstance(config, dict):
        return get(config)
    cls = _CLASSES.get(config.get("class_name"))
    if cls is None:
        raise unknown_name("regularizer", config.get("class_name"), _CLASSES)
    return cls(**config.get("config", {}))
