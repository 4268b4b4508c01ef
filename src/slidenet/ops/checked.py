"""Input checks in front of the public array ops (``slidenet.ops.conv2d``, ``max_pool2d``, ...).

The ops themselves (conv.py, pool.py, dense.py) assume arrays of a float dtype; layers call them
directly on data they have already checked. People calling ``slidenet.ops.conv2d`` by hand get
these wrappers instead: lists become arrays, integer and bool arrays become float32, and other
dtypes, ragged lists and shapes with no positions to pool are refused with a message that names
the op and the argument.
"""

from __future__ import annotations

import functools

import numpy as np

from slidenet._validation import fmt_shape
from slidenet.ops import conv as _conv
from slidenet.ops import dense as _dense
from slidenet.ops import pool as _pool


def as_op_array(a, who: str, what: str) -> np.ndarray:
    """``a`` as a float array (float16/32/64 kept, integer and bool -> float32), else an error."""
    try:
        arr = np.asarray(a)
    except ValueError:  # ragged nested lists
        raise ValueError(
            f"{who}: {what} is not a rectangular array: its rows have different lengths."
        ) from None
    kind = arr.dtype.kind
    if kind in "biu":
        return arr.astype(np.float32)
    if kind != "f":
        raise TypeError(
            f"{who}: {what} has dtype {arr.dtype}; expected real numbers (float, integer or bool). "
            f"Convert it with {what}.astype('float32')."
        )
    return arr


def _arrays(who, names, fn):
    """Wrap ``fn(*arrays, ...)``: check its leading array arguments (those in ``names``)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        args = list(args)
        for i, name in enumerate(names):
            if i < len(args):
                if args[i] is not None or name != "b":
                    args[i] = as_op_array(args[i], who, name)
            elif kwargs.get(name) is not None:
                kwargs[name] = as_op_array(kwargs[name], who, name)
        return fn(*args, **kwargs)

    return wrapper


def _sliding(who, names, fn, spatial):
    """Like ``_arrays``, and x must have ``spatial`` non-empty axes between N and D; 1D ops speak of
    themselves in errors (they run as 2D ops on a height-1 image)."""
    checked = _arrays(who, names, fn)

    @functools.wraps(fn)
    def wrapper(x, *args, **kwargs):
        x = as_op_array(x, who, "x")
        if x.ndim == spatial + 2 and 0 in x.shape[1:-1]:
            raise ValueError(
                f"{who}: x {fmt_shape(x.shape)} has a spatial axis of size 0; there is nothing to "
                "slide the window over."
            )
        w = args[0] if args else kwargs.get("w")
        if w is not None and "w" in names:
            w = as_op_array(w, who, "w")
            if w.ndim == spatial + 2 and 0 in w.shape[:spatial]:
                raise ValueError(
                    f"{who}: w {fmt_shape(w.shape)} has a kernel extent of 0; filters need at "
                    "least one tap along each spatial axis."
                )
        if w is not None and "w" in names and _empty_conv(x, w, spatial):
            return _empty_conv_result(checked, x, w, spatial, *args[1:], **kwargs)
        try:
            return checked(x, *args, **kwargs)
        except ValueError as e:
            if spatial == 1:
                raise ValueError(str(e).replace(who.replace("1d", "2d"), who)) from None
            raise

    return wrapper


def _empty_conv(x, w, spatial) -> bool:
    """A well-formed convolution with an empty batch, depth or filter bank (no arithmetic)."""
    rank = spatial + 2
    return (
        x.ndim == rank
        and w.ndim == rank
        and x.shape[-1] == w.shape[-2]
        and 0
        in (
            x.shape[0],
            x.shape[-1],
            w.shape[-1],
        )
    )


def _empty_conv_result(checked, x, w, spatial, b=None, *args, **kwargs):
    """The output of a convolution with N, D or K of 0: its shape from a one-example, one-channel,
    one-filter call (which also checks the geometry), filled with the bias."""
    n, k = x.shape[0], w.shape[-1]
    if b is not None:
        b = as_op_array(b, "conv", "b")
        if b.shape != (k,):
            raise ValueError(f"conv{spatial}d: b must have shape ({k},), got {fmt_shape(b.shape)}.")
    x1 = np.zeros((1, *x.shape[1:-1], 1), x.dtype)
    w1 = np.zeros((*w.shape[:-2], 1, 1), w.dtype)
    y1 = checked(x1, w1, None, *args, **kwargs)
    y = np.zeros((n, *y1.shape[1:-1], k), x.dtype)
    return y + b.astype(x.dtype) if b is not None else y


def _global(kind):
    def apply(x):
        x = as_op_array(x, f"global_{kind}_pool", "x")
        if x.ndim >= 3 and 0 in x.shape[1:-1]:
            raise ValueError(
                f"global_{kind}_pool: x {fmt_shape(x.shape)} has no positions to pool over "
                "(a spatial axis of size 0)."
            )
        if x.ndim >= 3 and 0 in (x.shape[0], x.shape[-1]):  # nothing to reduce: (N, D) empty
            return np.zeros((x.shape[0], x.shape[-1]), x.dtype)
        return _pool.global_pool_forward(x, kind)[0]

    apply.__name__ = f"global_{kind}_pool"
    apply.__doc__ = getattr(_pool, apply.__name__).__doc__
    return apply


conv2d = _sliding("conv2d", ("x", "w", "b"), _conv.conv2d, 2)
conv1d = _sliding("conv1d", ("x", "w", "b"), _conv.conv1d, 1)
dense = _arrays("dense", ("x", "w", "b"), _dense.dense)
max_pool2d = _sliding("max_pool2d", ("x",), _pool.max_pool2d, 2)
avg_pool2d = _sliding("avg_pool2d", ("x",), _pool.avg_pool2d, 2)
sum_pool2d = _sliding("sum_pool2d", ("x",), _pool.sum_pool2d, 2)
max_pool1d = _sliding("max_pool1d", ("x",), _pool.max_pool1d, 1)
avg_pool1d = _sliding("avg_pool1d", ("x",), _pool.avg_pool1d, 1)
global_max_pool = _global("max")
global_avg_pool = _global("avg")
