"""Split a data set into equal, disjoint shards, one per process of a data-parallel run.

Pure NumPy (no MPI): :func:`slidenet.distributed.shard` calls it with the process's own rank and
the number of processes.
"""

from __future__ import annotations

import numpy as np

from slidenet._validation import fmt_shape


def shard(x, y=None, rank=0, size=1, seed=None):
    """The examples of process ``rank`` out of ``size``: every ``size``-th one, from ``rank``.

    Shard ``r`` holds examples ``r, r + size, r + 2*size, ...`` (after a permutation of all
    examples by ``seed`` when one is given; every process computes the same permutation). All
    shards have ``N // size`` examples: the last ``N % size`` are left out, so that every process
    runs the same number of steps. Strided shards keep a data-parallel run equivalent to one
    process: with ``shuffle=False``, batch ``k`` of ``b`` examples on each of the ``size``
    processes together holds exactly the examples of batch ``k`` of ``size * b`` examples in one
    process.

    Args:
        x: examples (N, ...), e.g. images (N, H, W, C).
        y: targets (N, ...) or None.
        rank: this process's index, 0 <= rank < size.
        size: the number of processes.
        seed: None keeps the order; an int shuffles all N examples the same way on every process
            before they are dealt out (deterministic given the seed).

    Returns:
        (x_shard, y_shard), or x_shard alone when ``y`` is None; contiguous copies.

    >>> x = np.arange(10)
    >>> shard(x, rank=0, size=2), shard(x, rank=1, size=2)
    (array([0, 2, 4, 6, 8]), array([1, 3, 5, 7, 9]))
    >>> shard(x, x * 10, rank=1, size=3)
    (array([1, 4, 7]), array([10, 40, 70]))
    """
    for name, value, low in (("size", size, 1), ("rank", rank, 0)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
            raise ValueError(f"shard: {name} must be an integer >= {low}, got {value!r}.")
    if rank >= size:
        raise ValueError(
            f"shard: rank {rank} is not below size {size}; ranks are numbered 0..{size - 1}."
        )
    x = np.asarray(x)
    if x.ndim == 0:
        raise ValueError("shard: x must be an array of examples (N, ...), got a scalar.")
    n = len(x)
    if y is not None:
        y = np.asarray(y)
        if y.ndim == 0 or len(y) != n:
            raise ValueError(
                f"shard: x has {n} examples but y has shape {fmt_shape(y.shape)}; they must match."
            )
    if n < size:
        raise ValueError(
            f"shard: {n} examples cannot be dealt out to {size} processes (each needs at least "
            f"one); use fewer processes or more data."
        )
    if seed is None:
        idx = np.arange(rank, n - n % size, size)
    else:
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise ValueError(f"shard: seed must be None or an integer >= 0, got {seed!r}.")
        idx = np.random.default_rng(int(seed)).permutation(n)[rank : n - n % size : size]
    xs = np.ascontiguousarray(x[idx])
    return xs if y is None else (xs, np.ascontiguousarray(y[idx]))
