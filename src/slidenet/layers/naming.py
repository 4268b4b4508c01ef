"""Layer names and the checks of what a layer is given: one example's shape, a batch."""

from __future__ import annotations

import re
from collections import defaultdict

import numpy as np

from slidenet._validation import fmt_shape

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
