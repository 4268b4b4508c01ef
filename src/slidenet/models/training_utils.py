"""Small pieces of the training loop: batch-size and finite checks, log averaging."""

from __future__ import annotations

import numpy as np

from slidenet import metrics as metrics_mod

# Inference results do not depend on how examples are grouped (up to float rounding in the matrix
# products), so predict may split a large batch_size further: chunks whose largest activation fits
# in about this many bytes stay in cache and reuse memory (1,000 lecture-CNN images in one call
# ran 1.2-1.9x slower than in chunks of 100).
PREDICT_CHUNK_BYTES = 16 << 20


def _check_batch_size(batch_size, who):
    if batch_size is None:
        return 32
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, int | np.integer)
        or batch_size < 1
    ):
        raise ValueError(f"{who}: batch_size must be a positive integer, got {batch_size!r}.")
    return int(batch_size)


def _check_finite(x, who, chunk_elements=1 << 22):
    """as_float_array's NaN / Inf check, done a few MB at a time (x may be a memmap)."""
    if x.dtype.kind != "f" or x.size == 0:
        return
    rows = max(1, chunk_elements // max(1, x.size // len(x)))
    bad = sum(
        int(x[s : s + rows].size - np.count_nonzero(np.isfinite(x[s : s + rows])))
        for s in range(0, len(x), rows)
    )
    if bad:
        raise ValueError(
            f"{who}: x contains {bad} NaN or Inf value(s); clean or impute them before training."
        )


def _merge_shared(pairs):
    """One (weight, summed gradient) pair per array: a layer used both inside a nested model and
    outside it lists its weights twice, each with the gradient of its own calls."""
    merged: dict[int, list] = {}
    for w, g in pairs:
        if id(w) in merged:
            merged[id(w)][1] = merged[id(w)][1] + g
        else:
            merged[id(w)] = [w, g]
    return [tuple(p) for p in merged.values()]


def _accumulate(totals, values, weight):
    for key, value in values.items():
        if isinstance(value, metrics_mod.BatchUpdate):  # a stateful metric adds up by itself
            totals[key] = (value.apply(fresh=key not in totals), None)
            continue
        s, w = totals.get(key, (0.0, 0))
        totals[key] = (s + value * weight, w + weight)


def _means(totals):
    return {key: metrics_mod.log_value(s) if w is None else s / w for key, (s, w) in totals.items()}
