"""Compiled dropout: the mask and the output from the uniform draws in one pass.

The random numbers are drawn by the caller exactly as on the NumPy path (same generator, same
call), so the mask is the same; this kernel only fuses the NumPy path's compare, cast, divide
and multiply: mask = scale where keep >= rate else 0, y = x * mask, with scale = 1 / (1 - rate)
rounded to x's dtype by the caller, as the NumPy path rounds it. Bit for bit the NumPy numbers.
"""

from __future__ import annotations

import numba

from slidenet.ops.compiled import jit


@jit(parallel=True)
def dropout_forward(x, keep, rate, scale, mask, y):
    """Writes the mask for the draws ``keep`` into ``mask`` (which may be ``keep`` itself) and
    y = x * mask; flat arrays of one dtype, rate and scale numbers of that dtype."""
    for i in numba.prange(x.size):
        mask[i] = scale if keep[i] >= rate else 0
        y[i] = x[i] * mask[i]
