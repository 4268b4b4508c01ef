"""The BLAS library's own thread count, read and set at run time (OpenBLAS, as NumPy ships it).

A training step split over Python threads (:mod:`slidenet.models.sharded_step`) runs one matrix
product per thread at a time; OpenBLAS must then use one thread per call, or its extra threads
(which keep spinning after each product) fight ours for the cores. :func:`blas_threads` sets that
for a block of code and restores the previous count after it.

Found by looking for an OpenBLAS library among the ones this process has loaded and calling its
``openblas_set_num_threads`` (NumPy's wheels rename it ``scipy_openblas_set_num_threads64_``).
With another BLAS (MKL, Accelerate) nothing is found and the functions do nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools

_PREFIXES = ("scipy_openblas", "openblas")
_SUFFIXES = ("64_", "")


def _loaded_openblas() -> list[str]:
    """Paths of the OpenBLAS libraries mapped into this process (Linux), else []."""
    import numpy  # noqa: F401 - loads NumPy's BLAS

    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line.lower()}
    except OSError:
        return []
    return sorted(p for p in paths if p.startswith("/"))


@functools.cache
def _functions():
    """(get, set) ctypes functions of the first OpenBLAS found, or None."""
    for path in _loaded_openblas():
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix in _PREFIXES:
            for suffix in _SUFFIXES:
                get = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
                set_ = getattr(lib, f"{prefix}_set_num_threads{suffix}", None)
                if get is not None and set_ is not None:
                    get.restype, get.argtypes = ctypes.c_int, []
                    set_.restype, set_.argtypes = None, [ctypes.c_int]
                    return get, set_
    return None


def get_num_threads() -> int | None:
    """OpenBLAS's thread count, or None when no OpenBLAS is found."""
    found = _functions()
    return None if found is None else int(found[0]())


@contextlib.contextmanager
def blas_threads(n: int):
    """Run a block with OpenBLAS on ``n`` threads; the previous count comes back after it.

    >>> with blas_threads(1):
    ...     get_num_threads() in (1, None)
    True
    """
    found = _functions()
    if found is None:
        yield
        return
    get, set_ = found
    old = get()
    if old != n:
        set_(n)
    try:
        yield
    finally:
        if old != n:
            set_(old)
