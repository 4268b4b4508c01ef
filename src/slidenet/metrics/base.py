"""Stateful metrics (Keras' ``Metric``): ``update_state`` accumulates over batches, ``result``
reads the value so far, ``reset_state`` starts again; fit resets them at every epoch and before
each validation pass, so an epoch's AUC or precision is computed over all of its examples, not
averaged over batches.
"""

from __future__ import annotations

import re

import numpy as np

from slidenet.metrics import accuracy as acc

EPSILON = 1e-7  # Keras' backend.epsilon(), where Keras adds it


def snake_case(name: str) -> str:
    """Keras' default metric name from a class name: ``MeanIoU`` -> ``mean_io_u``."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", re.sub(r"\W+", "", name))
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


class Metric:
    """Base class: subclasses define ``update_state``, ``result`` and ``reset_state``.

    ``metric(y_true, y_pred)`` updates the state and returns the result (Keras). Results are
    Python floats, or float64 arrays for metrics with one value per class or threshold. The
    state is kept in float64 whatever ``dtype`` says (it is recorded for the config only).
    ``_direction`` ("up" or "down") tells callbacks in mode="auto" which way is better.
    """

    _direction: str | None = "up"

    def __init__(self, name=None, dtype=None):
        self.name = str(name) if name else snake_case(type(self).__name__)
        self.dtype = dtype or "float32"

    def update_state(self, y_true, y_pred, sample_weight=None):
        raise NotImplementedError

    def result(self):
        raise NotImplementedError

    def reset_state(self):
        raise NotImplementedError

    def __call__(self, y_true, y_pred, sample_weight=None):
        self.update_state(y_true, y_pred, sample_weight=sample_weight)
        return self.result()

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": self.dtype}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}>"


def sample_weights(sample_weight, shape, who) -> np.ndarray:
    """``sample_weight`` (None, a number, one per example, or any shape that broadcasts from the
    left) as float64 weights of ``shape``."""
    if sample_weight is None:
        return np.ones(shape)
    w = np.asarray(sample_weight, dtype=np.float64)
    if w.ndim < len(shape):
        w = w.reshape(w.shape + (1,) * (len(shape) - w.ndim))
    try:
        return np.broadcast_to(w, shape)
    except ValueError:
        raise ValueError(
            f"{who}: sample_weight of shape {np.shape(sample_weight)} does not fit the "
            f"predictions {tuple(shape)}; give one weight per example."
        ) from None


def scalar_or_array(values):
    """A result: a Python float for one value, else a float64 array."""
    values = np.asarray(values, dtype=np.float64)
    return float(values) if values.ndim == 0 else values


class MeanMetricWrapper(Metric):
    """The weighted mean of ``fn(y_true, y_pred, **kwargs)`` over every example seen.

    ``fn`` may return one value per example (weighted by ``sample_weight``) or the batch mean as
    a number (weighted by the batch size), like slidenet's accuracy functions; over an epoch this
    gives what fit logs for plain metric functions.
    """

    _direction = None

    def __init__(self, fn, name=None, dtype=None, **kwargs):
        if not callable(fn):
            raise TypeError(f"MeanMetricWrapper: fn must be a function, got {fn!r}.")
        self._fn, self._fn_kwargs = fn, kwargs
        super().__init__(name or getattr(fn, "__name__", None), dtype)
        self.reset_state()

    def reset_state(self):
        self.total, self.count = 0.0, 0.0

    def update_state(self, y_true, y_pred, sample_weight=None):
        values = np.asarray(self._fn(y_true, y_pred, **self._fn_kwargs), dtype=np.float64)
        if values.ndim == 0:
            if sample_weight is not None:
                raise ValueError(
                    f"{self.name}: the function returns the batch mean, so it cannot weigh "
                    "examples; give a function that returns one value per example."
                )
            n = len(y_pred) if np.ndim(y_pred) else 1
            self.total += float(values) * n
            self.count += n
            return
        w = sample_weights(sample_weight, values.shape, self.name)
        self.total += float(np.sum(values * w))
        self.count += float(np.sum(w))

    def result(self):
        return self.total / self.count if self.count else 0.0

    def get_config(self):
        return {**super().get_config(), **self._fn_kwargs}


class SparseCategoricalAccuracy(MeanMetricWrapper):
    """How often the argmax of the scores equals the integer label."""

    _direction = "up"

    def __init__(self, name="sparse_categorical_accuracy", dtype=None):
        super().__init__(acc.sparse_categorical_hits, name, dtype)


class CategoricalAccuracy(MeanMetricWrapper):
    """How often the argmax of the scores equals the one-hot target's argmax."""

    _direction = "up"

    def __init__(self, name="categorical_accuracy", dtype=None):
        super().__init__(acc.categorical_hits, name, dtype)


class BinaryAccuracy(MeanMetricWrapper):
    """How often outputs lie on the right side of ``threshold`` (targets > 0.5 are positive)."""

    _direction = "up"

    def __init__(self, name="binary_accuracy", dtype=None, threshold=0.5):
        super().__init__(acc.binary_hits, name, dtype, threshold=threshold)


class TopKCategoricalAccuracy(MeanMetricWrapper):
    """How often the one-hot target's class is among the ``k`` highest scores."""

    _direction = "up"

    def __init__(self, k=5, name="top_k_categorical_accuracy", dtype=None):
        acc._check_k(k, "TopKCategoricalAccuracy")
        super().__init__(acc.top_k_hits, name, dtype, k=k)


class SparseTopKCategoricalAccuracy(MeanMetricWrapper):
    """How often the integer label is among the ``k`` highest scores."""

    _direction = "up"

    def __init__(self, k=5, name="sparse_top_k_categorical_accuracy", dtype=None):
        acc._check_k(k, "SparseTopKCategoricalAccuracy")
        super().__init__(acc.sparse_top_k_hits, name, dtype, k=k)
