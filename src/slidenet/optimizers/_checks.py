"""Argument checks shared by the optimizers and the learning rate schedules."""

from __future__ import annotations

import math

import numpy as np

_REAL = (int, float, np.integer, np.floating)


def is_real(value) -> bool:
    """Whether ``value`` is a finite real number (bools are not numbers here)."""
    return not isinstance(value, bool) and isinstance(value, _REAL) and math.isfinite(value)


def check_number(value, who, what, low=None, high=None, *, low_open=False, high_open=False):
    """``value`` as a float if it is a finite number in the range, else a ValueError.

    ``low``/``high`` are the bounds (None: unbounded), ``*_open`` excludes the bound itself:
    ``check_number(0, "Adam", "learning_rate", 0, low_open=True)`` raises
    "Adam: learning_rate must be a finite number > 0, got 0."
    """
    ok = is_real(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        if low is not None and high is not None:
            wanted = f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        elif low is not None:
            wanted = f"a finite number {'>' if low_open else '>='} {low:g}"
        elif high is not None:
            wanted = f"a finite number {'<' if high_open else '<='} {high:g}"
        else:
            wanted = "a finite number"
        raise ValueError(f"{who}: {what} must be {wanted}, got {value!r}.")
    return float(value)


def plain_number(value):
    """A checked number as a JSON-friendly Python int (for ints) or float."""
    if isinstance(value, int | np.integer):
        return int(value)
    return float(value)


def check_bool(value, who, what) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise ValueError(f"{who}: {what} must be True or False, got {value!r}.")
    return bool(value)
