"""Weight constraints (Keras 3 names): applied to a weight after every optimizer step.

    MaxNorm(max_value=2, axis=0)     rescale each slice whose L2 norm exceeds max_value
    NonNeg()                          w = max(w, 0)
    UnitNorm(axis=0)                  every slice to norm 1
    MinMaxNorm(min_value=0, max_value=1, rate=1, axis=0)

The norm is taken over ``axis`` (for a Dense kernel (D_in, units), axis=0 is each unit's incoming
weights; for a Conv2D kernel (Fh, Fw, D, K) use axis=[0, 1, 2], one norm per filter). Given to a
layer as ``kernel_constraint=constraints.MaxNorm(3)`` (or 'max_norm', 'non_neg', 'unit_norm').

>>> import numpy as np
>>> np.round(MaxNorm(1.0)(np.array([[3.0, 0.1], [4.0, 0.2]])), 6)  # column 0 had norm 5
array([[0.6, 0.1],
       [0.8, 0.2]])
"""

from __future__ import annotations

import numpy as np

from slidenet._validation import unknown_name

_EPS = 1e-7  # Keras' epsilon: norms are divided as norm + eps


def _axis(axis):
    return tuple(axis) if isinstance(axis, list | tuple) else int(axis)


class Constraint:
    """Base class: ``c(w) -> w'`` (a new array; the layer assigns it in place)."""

    def __call__(self, w):
        return w

    def get_config(self) -> dict:
        return {}


class MaxNorm(Constraint):
    def __init__(self, max_value=2, axis=0):
        if not max_value > 0:
            raise ValueError(f"MaxNorm: max_value must be > 0, got {max_value!r}.")
        self.max_value, self.axis = float(max_value), _axis(axis)

    def __call__(self, w):
        norms = np.sqrt(np.sum(np.square(w), axis=self.axis, keepdims=True))
        desired = np.clip(norms, 0, self.max_value)
        return (w * (desired / (norms + _EPS))).astype(w.dtype)

    def get_config(self) -> dict:
        return {"max_value": self.max_value, "axis": self.axis}


class NonNeg(Constraint):
    def __call__(self, w):
        return np.maximum(w, 0).astype(w.dtype)


class UnitNorm(Constraint):
    def __init__(self, axis=0):
        self.axis = _axis(axis)

    def __call__(self, w):
        norms = np.sqrt(np.sum(np.square(w), axis=self.axis, keepdims=True))
        return (w / (norms + _EPS)).astype(w.dtype)

    def get_config(self) -> dict:
        return {"axis": self.axis}


class MinMaxNorm(Constraint):
    def __init__(self, min_value=0.0, max_value=1.0, rate=1.0, axis=0):
        if not 0 <= min_value <= max_value:
            raise ValueError(
                f"MinMaxNorm: need 0 <= min_value <= max_value, got {min_value!r}, {max_value!r}."
            )
        if not 0 <= rate <= 1:
            raise ValueError(f"MinMaxNorm: rate must be in [0, 1], got {rate!r}.")
        self.min_value, self.max_value = float(min_value), float(max_value)
        self.rate, self.axis = float(rate), _axis(axis)

    def __call__(self, w):
        norms = np.sqrt(np.sum(np.square(w), axis=self.axis, keepdims=True))
        clipped = np.clip(norms, self.min_value, self.max_value)
        desired = self.rate * clipped + (1 - self.rate) * norms
        return (w * (desired / (norms + _EPS))).astype(w.dtype)

    def get_config(self) -> dict:
        return {
            "min_value": self.min_value,
            "max_value": self.max_value,
            "rate": self.rate,
            "axis": self.axis,
        }


max_norm, non_neg, unit_norm, min_max_norm = MaxNorm, NonNeg, UnitNorm, MinMaxNorm
_BY_NAME = {
    "max_norm": MaxNorm,
    "non_neg": NonNeg,
    "unit_norm": UnitNorm,
    "min_max_norm": MinMaxNorm,
}
_CLASSES = {c.__name__: c for c in (MaxNorm, NonNeg, UnitNorm, MinMaxNorm)}


def get(identifier) -> Constraint | None:
    if identifier is None or isinstance(identifier, Constraint):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        if identifier.lower() not in _BY_NAME:
            raise unknown_name("constraint", identifier, _BY_NAME)
        return _BY_NAME[identifier.lower()]()
    raise TypeError(f"constraints must be names or Constraint objects, got {identifier!r}.")


def serialize(c) -> dict | None:
    if c is None:
        return None
    if type(c) not in _CLASSES.values():
        raise ValueError(f"cannot serialise custom constraint {c!r}; use a built-in one.")
    config = c.get_config()
    if isinstance(config.get("axis"), tuple):
        config["axis"] = list(config["axis"])
    return {"class_name": type(c).__name__, "config": config}


def deserialize(config) -> Constraint | None:
    if config is None:
        return None
    if not isinstance(config, dict):
        return get(config)
    cls = _CLASSES.get(config.get("class_name"))
    if cls is None:
        raise unknown_name("constraint", config.get("class_name"), _CLASSES)
    return cls(**config.get("config", {}))
