"""The one place for input checks and the shape of their messages.

Every message names *who* complains (a layer as ``Conv2D 'conv2d_1'``, a function as ``fit``),
*what* was
wrong with the numbers that show it, and *how* to fix it. Checks raise ``ValueError`` or
``TypeError``
(never ``assert``), so that tests can match the messages with regexes.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

import numpy as np


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return " Did you mean 'adam'?" for the closest choice, or "" when nothing is close."""
    choices, key = list(choices), str(name).lower()
    same_letters = [c for c in choices if sorted(c) == sorted(key)]  # 'adma' -> 'adam'
    close = same_letters or difflib.get_close_matches(key, choices, n=1, cutoff=0.6)
    return f" Did you mean '{close[0]}'?" if close else ""


def unknown_name(kind: str, name: str, choices: Iterable[str]) -> ValueError:
    """A ValueError for an unknown string identifier, listing the valid ones and the closest."""
    choices = sorted(choices)
    return ValueError(
        f"Unknown {kind} '{name}'.{did_you_mean(name, choices)} "
        f"Valid {kind}s: {', '.join(repr(c) for c in choices)}."
    )


def fmt_shape(shape) -> str:
    """(None, 28, 28, 1) -> '(None, 28, 28, 1)'; a 2-tuple of sizes -> '5x5'."""
    return (
        "("
        + ", ".join("None" if s is None else str(s) for s in shape)
        + (",)" if len(shape) == 1 else ")")
    )


def positive_int(value, what: str) -> int:
    """Check that ``value`` is a positive integer and return it as ``int``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{what} must be a positive integer, got {value!r}.")
    return int(value)


def int_tuple(value, n: int, what: str) -> tuple[int, ...]:
    """An int or a sequence of ``n`` positive ints -> a tuple of ``n`` ints (e.g. kernel_size)."""
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        value = (value,) * n
    try:
        values = tuple(value)
    except TypeError:
        raise ValueError(f"{what} must be an int or a tuple of {n} ints, got {value!r}.") from None
    if len(values) != n:
        raise ValueError(f"{what} must be an int or a tuple of {n} ints, got {value!r}.")
    return tuple(positive_int(v, what) for v in values)


def as_array(x, who: str, what: str = "x") -> np.ndarray:
    """``np.asarray(x)``, with a message naming ``who`` and ``what`` for ragged nested lists."""
    try:
        return np.asarray(x)
    except ValueError:
        raise ValueError(
            f"{who}: {what} is not a rectangular array: its rows have different lengths."
        ) from None


def as_float_array(x, who: str, what: str = "x", dtype=np.float32) -> np.ndarray:
    """Convert model input to a float array, refusing what cannot be data.

    Integer and bool arrays are cast to ``dtype``; float arrays keep float64 when given float64 (so
    gradient checks work) and otherwise become ``dtype``. NaN or Inf, object, complex and string
    arrays
    are refused with a message naming ``who`` and ``what``.
    """
    if isinstance(x, np.ndarray | list | tuple) or np.isscalar(x):
        arr = as_array(x, who, what)
    else:
        raise TypeError(f"{who}: {what} must be a NumPy array, got {type(x).__name__}.")
    kind = arr.dtype.kind
    if kind in "biu":
        arr = arr.astype(dtype)
    elif kind == "f":
        if arr.dtype != np.float64:
            arr = arr.astype(dtype, copy=False)
    else:
        raise TypeError(
            f"{who}: {what} has dtype {arr.dtype}; expected numbers (float or integer). "
            f"Convert it with {what}.astype('float32')."
        )
    if arr.size and not np.isfinite(arr).all():
        bad = int(arr.size - np.isfinite(arr).sum())
        raise ValueError(
            f"{who}: {what} contains {bad} NaN or Inf value(s); clean or impute them before "
            "training."
        )
    return arr
