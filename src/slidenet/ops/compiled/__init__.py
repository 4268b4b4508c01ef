"""Compiled (Numba) kernels: fused loops for memory-bound steps of the ops.

Imported only when a kernel first runs (slidenet.ops.kernels decides whether they do), so Numba is
never imported by ``import slidenet``. Every kernel is ``jit``-compiled lazily on its first call
with ``cache=True`` (the machine code is kept on disk next to this package; a second process loads
it instead of compiling), takes and returns arrays only, and is checked against the NumPy path.
"""

from __future__ import annotations

import os

# Numba's OpenMP workers must not spin after a parallel loop: on 2 cores they fought OpenBLAS's
# spinning threads and made a training step 1.7x slower (benchmarks/README.md). Passive waiting
# costs microseconds per call. Only takes effect if no OpenMP runtime is loaded yet.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numba  # noqa: E402

from slidenet.utils.threads import num_threads  # noqa: E402

# One thread unless SLIDENET_NUM_THREADS asks for more, as for the NumPy path: in a training step
# the BLAS threads (and torch's, in one process) keep spinning after their work, and parallel
# kernels beside them made LeNet-5 training 7x slower here; on one thread the compiled kernels
# made it 1.17x faster than NumPy (benchmarks/README.md, "Compiled kernels").
numba.set_num_threads(min(num_threads(), numba.config.NUMBA_NUM_THREADS))


def jit(fn=None, **options):
    """``numba.njit`` with the project's settings: cached on disk, no Python objects inside."""
    settings = {"cache": True, "nogil": True, **options}
    if fn is None:
        return lambda f: numba.njit(**settings)(f)
    return numba.njit(**settings)(fn)


def use_one_thread() -> None:
    """Parallel kernels started from the calling thread use that thread alone (Numba's thread
    count is per thread): for the threads of a split training step, which already fill the cores."""
    if numba.get_num_threads() != 1:
        numba.set_num_threads(1)
