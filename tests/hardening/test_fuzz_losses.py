"""Fuzz the functional losses and metrics (``slidenet.losses.*``, ``slidenet.metrics.*``).

Random targets and predictions of random shapes (mismatched lengths, wrong ranks, empty), dtypes
and contents. Each call returns a finite float or raises a documented error naming the loss or
metric.
"""

from __future__ import annotations

import numpy as np
from fuzz_support import FUZZ, call_clean, float_arrays, is_nasty, odd_arrays, small_shapes
from hypothesis import given
from hypothesis import strategies as st

from slidenet import losses, metrics

LOSSES = {
    "sparse_categorical_crossentropy": losses.sparse_categorical_crossentropy,
    "categorical_crossentropy": losses.categorical_crossentropy,
    "binary_crossentropy": losses.binary_crossentropy,
    "mean_squared_error": losses.mean_squared_error,
}
METRICS = {
    "sparse_categorical_accuracy": metrics.sparse_categorical_accuracy,
    "categorical_accuracy": metrics.categorical_accuracy,
    "binary_accuracy": metrics.binary_accuracy,
}


@st.composite
def values(draw, shape, kind):
    """Predictions in [0, 1] (or logits), or labels / one-hot targets; sometimes odd arrays."""
    if draw(st.integers(0, 5)) == 0:
        return draw(odd_arrays(shape))
    if kind == "labels":
        rng = np.random.default_rng(draw(st.integers(0, 99)))
        return rng.integers(-1, 4, shape)
    x = draw(float_arrays(shape, bound=1.0))
    return np.abs(x) if kind == "probs" else x


@FUZZ
@given(
    st.sampled_from(sorted({**LOSSES, **METRICS})),
    small_shapes(0, 3, 0, 4),
    small_shapes(0, 3, 0, 4),
    st.sampled_from(["labels", "probs", "logits"]),
    st.booleans(),
    st.data(),
)
def test_losses_and_metrics(name, true_shape, pred_shape, true_kind, from_logits, data):
    y_true = data.draw(values(true_shape, true_kind))
    y_pred = data.draw(values(pred_shape, "logits" if from_logits else "probs"))
    fn = {**LOSSES, **METRICS}[name]
    kwargs = {"from_logits": from_logits} if name in LOSSES and name != "mean_squared_error" else {}
    with np.errstate(all="ignore") if is_nasty(y_pred) or is_nasty(y_true) else _nothing():
        ok, value = call_clean(fn, [name, "loss", "metric"], y_true, y_pred, **kwargs)
    if ok:
        assert isinstance(value, float)
        if not (is_nasty(y_pred) or is_nasty(y_true)):
            assert np.isfinite(value), (name, y_true, y_pred, value)


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
