"""Inverted dropout: in training, zero each unit with probability ``rate`` and scale the survivors
by 1 / (1 - rate) so the expected activation is unchanged; at inference, the identity.
"""

from __future__ import annotations

import numpy as np


def dropout_forward(x, rate, rng: np.random.Generator):
    """Apply dropout to x (any shape) with a mask drawn from ``rng``; returns (y, mask).

    The mask holds 0 or 1 / (1 - rate) in x's dtype, so backward is one multiplication.
    """
    if not 0 <= rate < 1:
        raise ValueError(f"dropout: rate must be in [0, 1), got {rate!r}.")
    keep = rng.random(x.shape, dtype=np.float32 if x.dtype == np.float32 else np.float64)
    mask = (keep >= rate).astype(x.dtype) / x.dtype.type(1 - rate)
    return x * mask, mask


def dropout_backward(dy, mask):
    """dx = dy * mask."""
    return dy * mask
