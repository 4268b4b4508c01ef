"""Shared pieces of the hypothesis fuzz tests: settings profiles, input strategies, the error rule.

Profiles (selected with the environment variable ``SLIDENET_FUZZ``):

* ``ci`` (default): 30 examples per test, what ``make test`` runs;
* ``long``: 2,000 examples per test, ``SLIDENET_FUZZ=long .venv/bin/python -m pytest
  tests/hardening -q -p no:cacheprovider``.

Every fuzz test decorates with ``@FUZZ`` (not a global ``settings.load_profile``, which would change
the other hypothesis tests of the suite).

The rule every fuzz test checks (:func:`call_clean`): a call either returns, or raises one of the
library's documented errors, ``ValueError`` / ``TypeError`` (and their subclasses such as
``ModelFileError``, ``IDXFormatError``), ``FloatingPointError`` (non-finite results the library
detects) or ``RuntimeError`` (an uncompiled model), with a message that names who complained.
Never an ``IndexError``, ``KeyError``, ``ZeroDivisionError``, ``AttributeError``, a NumPy message
such as "operands could not be broadcast", nor a NumPy warning (pytest turns warnings into errors).
"""

from __future__ import annotations

import os
import re
from datetime import timedelta

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

_COMMON = {
    # typical examples take 1-60 ms; 20 s only fails a hang, even on a loaded 2-core machine
    "deadline": timedelta(seconds=20),
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
    "derandomize": False,
    "database": None,  # no .hypothesis folder in the tree
}
settings.register_profile("slidenet-fuzz-ci", max_examples=30, **_COMMON)
settings.register_profile("slidenet-fuzz-long", max_examples=2000, **_COMMON)

PROFILE = "slidenet-fuzz-long" if os.environ.get("SLIDENET_FUZZ") == "long" else "slidenet-fuzz-ci"
#: Decorator with the selected profile's settings: ``@FUZZ`` above ``@given``.
FUZZ = settings(settings.get_profile(PROFILE))

ALLOWED = (ValueError, TypeError, FloatingPointError, RuntimeError)
#: Fragments of NumPy's own messages: a library check should have spoken first.
NUMPY_MESSAGES = (
    "operands could not be broadcast",
    "cannot reshape array",
    "could not convert string",
    "setting an array element with a sequence",
    "matmul: Input operand",
    "is out of bounds",
    "object arrays are not supported",
    "The truth value of an array",
    "ufunc",
    "not supported for the input types",
    "inhomogeneous",
    "zero-size array",
    "division by zero",
    "unhashable type",
    "object of type",
    "takes from",
    "unexpected keyword argument",
)


class FuzzFailure(AssertionError):
    """The call broke the rule; the message shows the exception it raised."""


#: Messages seen where a documented error wraps Python's own text (reported, not failed).
WRAPPED: dict[str, str] = {}


def check_error(err: BaseException, who, wrapped: str | None = None) -> None:
    """Fail unless ``err`` is a documented error whose message names one of ``who``.

    ``wrapped``: a phrase (e.g. "invalid model description") after which the library quotes the
    message of the error it caught; such messages are accepted and collected in ``WRAPPED``.
    """
    names = (who,) if isinstance(who, str) else tuple(who)
    message = str(err)
    if not isinstance(err, ALLOWED) or isinstance(err, (KeyError, IndexError)):
        raise FuzzFailure(f"undocumented {type(err).__name__}: {message}") from err
    if wrapped and wrapped in message:
        WRAPPED.setdefault(message.split(wrapped, 1)[1][:80], message)
        return
    for fragment in NUMPY_MESSAGES:
        if fragment in message:
            raise FuzzFailure(f"NumPy's message escaped ({type(err).__name__}): {message}") from err
    if not any(re.search(re.escape(n), message, re.IGNORECASE) for n in names):
        raise FuzzFailure(
            f"{type(err).__name__} does not name {' / '.join(names)}: {message}"
        ) from err


def call_clean(fn, who, *args, _wrapped=None, **kwargs):
    """(True, result) when ``fn`` returns, (False, error) when it raises a documented error."""
    try:
        return True, fn(*args, **kwargs)
    except Exception as err:  # noqa: BLE001 - sorting the exception is the point
        check_error(err, who, _wrapped)
        return False, err


def assert_finite(y, what: str) -> None:
    """Outputs from finite, moderate inputs must be finite (no silent NaN / Inf)."""
    arrays = y if isinstance(y, (list, tuple)) else [y]
    for a in arrays:
        if a is None:
            continue
        a = np.asarray(a)
        if a.dtype.kind in "fc" and a.size and not np.isfinite(a).all():
            raise FuzzFailure(f"{what}: non-finite output from finite inputs: {a!r}")


# ----- strategies ---------------------------------------------------------------------------------
FLOAT_DTYPES = (np.float32, np.float64)
ODD_DTYPES = (np.float16, np.int32, np.int64, np.uint8, np.bool_, np.complex64, object)


def moderate_floats(dtype=np.float32, bound: float = 100.0):
    """Finite floats of at most ``bound`` in magnitude, representable in ``dtype``."""
    width = 32 if np.dtype(dtype) == np.float32 else 64
    return st.floats(-bound, bound, allow_nan=False, allow_infinity=False, width=width)


def nasty_values():
    """Floats that break arithmetic: NaN, +-Inf, huge, tiny, negative zero."""
    return st.sampled_from(
        [np.nan, np.inf, -np.inf, 3.0e38, -3.0e38, 1e300, -1e300, 1e-45, -0.0, 0.0]
    )


@st.composite
def float_arrays(draw, shape, dtype=None, bound: float = 100.0):
    """A finite, moderate float array of ``shape``, sometimes non-contiguous or read-only."""
    dtype = dtype or draw(st.sampled_from(FLOAT_DTYPES))
    size = int(np.prod(shape)) if len(shape) else 1
    seed = draw(st.integers(0, 2**32 - 1))
    data = np.random.default_rng(seed).uniform(-bound, bound, size).astype(dtype)
    return draw(layouts(data.reshape(shape)))


@st.composite
def layouts(draw, array):
    """The same values as ``array`` stored differently: C order, a strided view, a transpose of a
    transpose, or read-only."""
    kind = draw(st.sampled_from(["plain", "strided", "transposed", "readonly"]))
    if kind == "strided":
        big = np.zeros(
            (*array.shape[:-1], 2 * array.shape[-1]) if array.ndim else (2,), array.dtype
        )
        if array.ndim:
            big[..., ::2] = array
            return big[..., ::2]
        return array
    if kind == "transposed" and array.ndim >= 2:
        return np.ascontiguousarray(array.T).T  # Fortran-ordered, same values and shape
    if kind == "readonly":
        array = array.copy()
        array.flags.writeable = False
    return array


@st.composite
def odd_arrays(draw, shape):
    """Arrays a user may pass by mistake: other dtypes, or NaN / Inf / huge values."""
    kind = draw(st.sampled_from(["dtype", "nasty"]))
    size = int(np.prod(shape)) if len(shape) else 1
    if kind == "dtype":
        dtype = draw(st.sampled_from(ODD_DTYPES))
        values = np.arange(size) % 3
        if dtype is object:
            return np.array([float(v) for v in values] or [], dtype=object).reshape(shape)
        return values.astype(dtype).reshape(shape)
    dtype = draw(st.sampled_from(FLOAT_DTYPES))
    values = np.zeros(size, dtype)
    if size:
        with np.errstate(over="ignore"):
            values[draw(st.integers(0, size - 1))] = draw(nasty_values())
    return values.reshape(shape)


def small_shapes(min_dims=1, max_dims=4, min_side=0, max_side=4):
    """Tuples of small sizes, zero included by default."""
    return st.lists(st.integers(min_side, max_side), min_size=min_dims, max_size=max_dims).map(
        tuple
    )


def is_nasty(x) -> bool:
    """Does ``x`` hold something other than moderate finite real numbers?"""
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        return True
    if x.dtype.kind == "f" and x.size:
        if not np.isfinite(x).all():
            return True
        return bool(np.abs(x).max() > 1e4)
    return False
