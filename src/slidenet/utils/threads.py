"""Elementwise NumPy work on every core.

Matrix products already use all cores (BLAS threads), but NumPy's elementwise operations run on
one. They release the GIL, though, so two Python threads working on separate halves of the same
arrays do run at once. :func:`run_in_parts` does that for the memory-bound parts of a training step
(pooling, the optimizer's update). Every element is computed by the same operations as in one
thread, so the results are identical bit for bit.

Off by default: set ``SLIDENET_NUM_THREADS`` (e.g. to the number of cores) to turn it on. The
default stays at one thread because OpenBLAS's own threads keep spinning for a while after each
matrix product: on a 2-core machine a third busy thread made training steps slower, not faster,
and on a loaded machine dramatically so (benchmarks/README.md).

The cores are used by default in another way: a training step of a Sequential model of
per-example layers is split by examples over threads, with OpenBLAS held at one thread meanwhile
(:mod:`slidenet.models.sharded_step`; ``SLIDENET_NUM_THREADS`` caps those threads too).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

# below this many elements per call the threads' overhead outweighs the gain
MIN_PARALLEL_SIZE = 1 << 18

_pool: ThreadPoolExecutor | None = None
_pool_pid = 0  # a forked child inherits the pool object but not its threads


def num_threads() -> int:
    """Threads used for elementwise work: ``SLIDENET_NUM_THREADS``, else 1."""
    value = os.environ.get("SLIDENET_NUM_THREADS", "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else 1


def run_in_parts(fn, n: int, size: int) -> None:
    """Call ``fn(start, stop)`` over contiguous parts covering range(n), in parallel threads.

    Args:
        fn: does the work for items [start, stop) (e.g. examples of a batch); must only write to
            its own part.
        n: number of items. size: total number of elements the work touches, to decide whether
            threads pay off (serial below MIN_PARALLEL_SIZE).

    >>> import numpy as np
    >>> a = np.arange(10.0)  # (with SLIDENET_NUM_THREADS unset this runs in the calling thread)
    >>> run_in_parts(lambda i, j: np.multiply(a[i:j], 2, out=a[i:j]), len(a), a.size)
    >>> a[-1]
    np.float64(18.0)
    """
    parts = min(num_threads(), n)
    if parts <= 1 or size < MIN_PARALLEL_SIZE:
        fn(0, n)
        return
    global _pool, _pool_pid
    if _pool is None or _pool._max_workers < parts or _pool_pid != os.getpid():
        _pool = ThreadPoolExecutor(max_workers=parts, thread_name_prefix="slidenet")
        _pool_pid = os.getpid()
    bounds = [n * k // parts for k in range(parts + 1)]
    futures = [_pool.submit(fn, bounds[k], bounds[k + 1]) for k in range(1, parts)]
    fn(bounds[0], bounds[1])  # the calling thread does the first part
    for future in futures:
        future.result()
