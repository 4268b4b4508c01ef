"""Inverted dropout: in training, zero each unit with probability ``rate`` and scale the survivors
by 1 / (1 - rate) so the expected activation is unchanged; at inference, the identity.

With the compiled kernels (:mod:`slidenet.ops.kernels`) the mask and the output are made in one
pass from the same random draws (``slidenet/ops/compiled/dropout.py``): the same numbers.
"""

from __future__ import annotations

import numpy as np

from slidenet.ops import kernels


def dropout_forward(x, rate, rng: np.random.Generator):
    """Apply dropout to x (any shape) with a mask drawn from ``rng``; returns (y, mask).

    The mask holds 0 or 1 / (1 - rate) in x's dtype, so backward is one multiplication.
    """
    if not 0 <= rate < 1:
        raise ValueError(f"dropout: rate must be in [0, 1), got {rate!r}.")
    keep = rng.random(x.shape, dtype=np.float32 if x.dtype == np.float32 else np.float64)
    if kernels.compiled() and x.dtype == keep.dtype and x.size and x.ndim:
        from slidenet.ops.compiled import dropout as compiled

        f = x.dtype.type
        y = np.empty(x.shape, x.dtype)
        flat = keep.reshape(-1)  # the draws become the mask, in place
        compiled.dropout_forward(
            np.ascontiguousarray(x).reshape(-1),
            flat,
            f(rate),
            f(1) / f(1 - rate),
            flat,
            y.reshape(-1),
        )
        return y, keep
    mask = (keep >= rate).astype(x.dtype) / x.dtype.type(1 - rate)
    return x * mask, mask


def dropout_backward(dy, mask):
    """dx = dy * mask."""
    return dy * mask
