"""Merging several tensors into one: elementwise add, subtract, multiply, average, maximum, minimum,
and concatenation along an axis (the math of Keras' merge layers).

Every op takes a list ``xs`` of arrays x_1 ... x_n (n >= 2; subtract: exactly 2) and returns
``(y, cache)``; its backward takes dy (shaped like y) and returns the list [dx_1, ..., dx_n], one
fresh array per input, in input order (no two of them share memory, and none is a view of dy, so a
caller may accumulate into them in place).

Shapes are strict: the elementwise ops need inputs of exactly the same shape (N, ...), concatenate
needs the same rank and the same sizes on every axis but ``axis``. Keras 3's ``Add`` (and the other
elementwise merges) also broadcast inputs whose shapes differ, e.g. (N, 4, 4, 8) + (N, 1, 1, 8);
slidenet refuses that with a ValueError naming all the shapes: a broadcast would need a reducing
backward, and a silent broadcast usually hides a wiring mistake.

Ops never modify their inputs; y has the inputs' dtype (their common dtype, ``np.result_type``, if
they differ), each dx has the dtype of dy (and the inputs).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from slidenet._validation import fmt_shape


class MergeCache(NamedTuple):
    """add, subtract, average: the gradient does not depend on the values, only on the count."""

    n: int


class MultiplyCache(NamedTuple):
    """multiply: the inputs (dx_i = dy * the product of the others)."""

    xs: tuple


class ArgCache(NamedTuple):
    """maximum, minimum: for every output entry, the index of the input that supplied it."""

    index: np.ndarray  # (N, ...) small unsigned ints in [0, n)
    n: int


class ConcatenateCache(NamedTuple):
    """concatenate: where to cut dy back into pieces."""

    axis: int  # normalised to 0 <= axis < ndim
    sizes: tuple  # size of each input along axis


def describe_shapes(shapes) -> str:
    """'(4, 4, 8) and (4, 4, 3)', '(2,), (2,) and (3,)': every shape, for messages."""
    texts = [fmt_shape(tuple(s)) for s in shapes]
    return texts[0] if len(texts) == 1 else ", ".join(texts[:-1]) + " and " + texts[-1]


def _arrays(xs, who: str, exactly: int | None = None) -> list[np.ndarray]:
    """``xs`` as a list of arrays, checking the count (>= 2, or ``exactly``)."""
    if not isinstance(xs, list | tuple):
        raise TypeError(
            f"{who}: xs must be a list of arrays, e.g. {who}([a, b]), got {type(xs).__name__}."
        )
    xs = [np.asarray(x) for x in xs]
    if exactly is not None and len(xs) != exactly:
        raise ValueError(f"{who}: needs exactly {exactly} arrays, got {len(xs)}.")
    if len(xs) < 2:
        raise ValueError(f"{who}: needs a list of at least 2 arrays, got {len(xs)}.")
    return xs


def _same_shape(xs, who: str, exactly: int | None = None) -> list[np.ndarray]:
    xs = _arrays(xs, who, exactly)
    if any(x.shape != xs[0].shape for x in xs):
        raise ValueError(
            f"{who}: inputs must have the same shape, got "
            f"{describe_shapes([x.shape for x in xs])} (no broadcasting)."
        )
    return xs


# ----- sums ---------------------------------------------------------------------------------------
def add_forward(xs):
    """y = x_1 + ... + x_n.

    Args:
        xs: n >= 2 arrays, all shaped (N, ...).

    Returns:
        y (N, ...) and the cache for :func:`add_backward`.
    """
    xs = _same_shape(xs, "add")
    y = xs[0] + xs[1]
    for x in xs[2:]:
        y = y + x
    return y, MergeCache(len(xs))


def add_backward(dy, cache: MergeCache):
    """dx_i = dy for every input: n copies of dy (N, ...)."""
    return [dy.copy() for _ in range(cache.n)]


def subtract_forward(xs):
    """y = x_1 - x_2 for exactly two arrays shaped (N, ...); returns (y, cache)."""
    x1, x2 = _same_shape(xs, "subtract", exactly=2)
    return x1 - x2, MergeCache(2)


def subtract_backward(dy, cache: MergeCache):
    """[dx_1, dx_2] = [dy, -dy], each (N, ...)."""
    return [dy.copy(), -dy]


def average_forward(xs):
    """y = (x_1 + ... + x_n) / n for n >= 2 arrays shaped (N, ...); returns (y, cache)."""
    y, cache = add_forward(xs)
    return y / cache.n, cache


def average_backward(dy, cache: MergeCache):
    """dx_i = dy / n for every input, each (N, ...)."""
    return [dy / cache.n for _ in range(cache.n)]


# ----- products -----------------------------------------------------------------------------------
def multiply_forward(xs):
    """y = x_1 * ... * x_n (elementwise) for n >= 2 arrays shaped (N, ...); returns (y, cache)."""
    xs = _same_shape(xs, "multiply")
    y = xs[0] * xs[1]
    for x in xs[2:]:
        y = y * x
    return y, MultiplyCache(tuple(xs))


def multiply_backward(dy, cache: MultiplyCache):
    """dx_i = dy * (product of every x_j with j != i), each (N, ...).

    Built from prefix and suffix products, so zeros among the inputs are fine (no division by x_i)
    and the work is O(n) products.
    """
    xs = cache.xs
    n = len(xs)
    before = [dy]  # before[i] = dy * x_1 * ... * x_(i-1)
    for x in xs[:-1]:
        before.append(before[-1] * x)
    dxs = [None] * n
    after = None  # x_(i+1) * ... * x_n
    for i in range(n - 1, -1, -1):
        dxs[i] = before[i] if after is None else before[i] * after  # before[n-1] is fresh
        after = xs[i] if after is None else after * xs[i]
    return dxs


# ----- maximum and minimum ------------------------------------------------------------------------
def _extreme_forward(xs, who: str, pick):
    xs = _same_shape(xs, who)
    stacked = np.stack(xs)  # (n, N, ...)
    index = pick(stacked, axis=0)  # argmax/argmin: the FIRST input holding the extreme value
    y = np.take_along_axis(stacked, index[None], axis=0)[0]
    return y, ArgCache(index.astype(np.min_scalar_type(len(xs) - 1)), len(xs))


def _extreme_backward(dy, cache: ArgCache):
    dxs = []
    for i in range(cache.n):
        dx = np.zeros_like(dy)
        np.copyto(dx, dy, where=cache.index == i)
        dxs.append(dx)
    return dxs


def maximum_forward(xs):
    """y = max(x_1, ..., x_n) elementwise, for n >= 2 arrays shaped (N, ...); returns (y, cache).

    A NaN in any input gives NaN (the first NaN wins, as NumPy's argmax has it).
    """
    return _extreme_forward(xs, "maximum", np.argmax)


def maximum_backward(dy, cache: ArgCache):
    """dx_i = dy where x_i supplied the maximum, 0 elsewhere; each (N, ...).

    Ties: the whole gradient goes to the FIRST input that holds the maximum (the lowest i), so the
    gradients still sum to dy. TensorFlow's ``tf.maximum`` also sends a tie to its first argument,
    so Keras on TensorFlow (which folds the inputs left to right) agrees; ``torch.maximum`` and JAX
    split a tie evenly between the tied inputs, so Keras on those backends differs at exact ties.
    """
    return _extreme_backward(dy, cache)


def minimum_forward(xs):
    """y = min(x_1, ..., x_n) elementwise, for n >= 2 arrays shaped (N, ...); returns (y, cache)."""
    return _extreme_forward(xs, "minimum", np.argmin)


def minimum_backward(dy, cache: ArgCache):
    """dx_i = dy where x_i supplied the minimum, 0 elsewhere; ties go to the FIRST input holding the
    minimum (see :func:`maximum_backward` for how that compares with TensorFlow, PyTorch and JAX).
    """
    return _extreme_backward(dy, cache)


# ----- concatenation ------------------------------------------------------------------------------
def concatenate_forward(xs, axis=-1):
    """Join arrays along ``axis``: shapes (N, ..., D_i, ...) -> (N, ..., D_1 + ... + D_n, ...).

    Args:
        xs: n >= 2 arrays of the same rank and the same sizes on every axis except ``axis``.
        axis: any axis of the arrays, negative counting from the end (-1: channels in NHWC).

    Returns:
        y and the cache for :func:`concatenate_backward`.
    """
    xs = _arrays(xs, "concatenate")
    ndim = xs[0].ndim
    if isinstance(axis, bool) or not isinstance(axis, int | np.integer):
        raise TypeError(f"concatenate: axis must be an int, got {axis!r}.")
    if not -ndim <= axis < ndim:
        raise ValueError(
            f"concatenate: axis {axis} is out of range for arrays of rank {ndim} "
            f"({describe_shapes([x.shape for x in xs])}); use {-ndim}..{ndim - 1}."
        )
    given, axis = axis, int(axis) % ndim
    if any(x.ndim != ndim or _without(x.shape, axis) != _without(xs[0].shape, axis) for x in xs):
        raise ValueError(
            f"concatenate: all inputs must match except on axis {given}, got "
            f"{describe_shapes([x.shape for x in xs])}."
        )
    y = np.concatenate(xs, axis=axis)
    return y, ConcatenateCache(axis, tuple(x.shape[axis] for x in xs))


def _without(shape, axis):
    return shape[:axis] + shape[axis + 1 :]


def concatenate_backward(dy, cache: ConcatenateCache):
    """Cut dy back into the inputs' pieces along the axis: [dx_1, ..., dx_n], each shaped like its
    input (copies, not views of dy)."""
    cuts = np.cumsum(cache.sizes)[:-1]
    return [piece.copy() for piece in np.split(dy, cuts, axis=cache.axis)]


# ----- plain forms --------------------------------------------------------------------------------
def add(xs):
    """x_1 + ... + x_n for a list of equally shaped arrays.

    >>> add([np.array([1.0, 2.0]), np.array([10.0, 20.0]), np.array([100.0, 200.0])])
    array([111., 222.])
    """
    return add_forward(xs)[0]


def subtract(xs):
    """x_1 - x_2.

    >>> subtract([np.array([5.0, 1.0]), np.array([2.0, 3.0])])
    array([ 3., -2.])
    """
    return subtract_forward(xs)[0]


def multiply(xs):
    """x_1 * ... * x_n, elementwise.

    >>> multiply([np.array([1.0, 2.0]), np.array([3.0, 4.0])])
    array([3., 8.])
    """
    return multiply_forward(xs)[0]


def average(xs):
    """(x_1 + ... + x_n) / n.

    >>> average([np.array([1.0, 2.0]), np.array([3.0, 6.0])])
    array([2., 4.])
    """
    return average_forward(xs)[0]


def maximum(xs):
    """Elementwise maximum.

    >>> maximum([np.array([1.0, 5.0]), np.array([3.0, 4.0])])
    array([3., 5.])
    """
    return maximum_forward(xs)[0]


def minimum(xs):
    """Elementwise minimum.

    >>> minimum([np.array([1.0, 5.0]), np.array([3.0, 4.0])])
    array([1., 4.])
    """
    return minimum_forward(xs)[0]


def concatenate(xs, axis=-1):
    """Join along ``axis``.

    >>> concatenate([np.zeros((1, 2)), np.ones((1, 1))])
    array([[0., 0., 1.]])
    """
    return concatenate_forward(xs, axis)[0]
