"""Which implementation runs the hot loops: compiled Numba kernels, or the NumPy code.

The NumPy code in ``slidenet.ops`` is the reference and runs everywhere. With the ``fast`` extra
(``pip install slidenet[fast]``: Numba, a compiler for NumPy-style loops) some memory-bound steps
run as compiled, fused loops instead (``slidenet/ops/compiled/``); each compiled kernel computes
the same numbers as the NumPy path (tests run both). The choice is made once, at import:

- ``SLIDENET_KERNELS=numpy`` forces the NumPy path;
- otherwise the compiled kernels run when Numba is installed.

``slidenet.ops.backend()`` says which path is active ('numba' or 'numpy'). Numba itself is
imported only when the first compiled kernel runs, and kernels are compiled one by one on first use
and cached on disk (``cache=True``), so ``import slidenet`` stays fast and a second process pays no
compile time.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os

BACKENDS = ("numba", "numpy")


def _initial() -> str:
    wanted = os.environ.get("SLIDENET_KERNELS", "").strip().lower()
    if wanted not in ("", *BACKENDS):
        raise ValueError(
            f"SLIDENET_KERNELS={wanted!r}: use 'numpy' (the reference path) or 'numba' (compiled "
            "kernels, needs the fast extra); unset it to choose automatically."
        )
    available = importlib.util.find_spec("numba") is not None
    if wanted == "numba" and not available:
        raise ImportError(
            "SLIDENET_KERNELS=numba but Numba is not installed: pip install 'slidenet[fast]'."
        )
    return "numba" if available and wanted != "numpy" else "numpy"


_state = {"backend": _initial()}


def backend() -> str:
    """'numba' when the compiled kernels run, 'numpy' for the pure NumPy path."""
    return _state["backend"]


def compiled() -> bool:
    """Do the compiled kernels run? (Checked by the ops at each call.)"""
    return _state["backend"] == "numba"


@contextlib.contextmanager
def using(name: str):
    """Run a block with the given backend ('numpy' or 'numba'): for tests and benchmarks."""
    if name not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {name!r}.")
    if name == "numba" and importlib.util.find_spec("numba") is None:
        raise ImportError("Numba is not installed: pip install 'slidenet[fast]'.")
    old = _state["backend"]
    _state["backend"] = name
    try:
        yield
    finally:
        _state["backend"] = old
