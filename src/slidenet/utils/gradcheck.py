"""Numerical gradient check of a layer's hand-written backward pass, in float64."""

from __future__ import annotations

import numpy as np


def gradcheck(layer, x, eps=1e-6, seed=0, training=True, max_entries=200) -> dict:
    """Compare ``layer.backward`` with central differences of a random scalar loss.

    The loss is L = sum(r * layer(x)) with a fixed random r, so dL/dy = r. The layer is switched to
    float64 for the check and restored afterwards (weights included). Inputs whose elements number
    more than ``max_entries`` are checked on that many random entries.

    Args:
        layer: a built or unbuilt layer. x: input batch (N, ...).
        training: run the layer in training mode (dropout masks are fixed by reseeding).

    Returns:
        {"dx": err, "kernel": err, ...}: per tensor, the relative error max |a - n| / max(|a|, |n|)
        of analytic against numerical gradients, both maxima over the checked entries (an
        entry-wise ratio would turn rounding noise on near-zero entries into large errors).

    >>> from slidenet.layers import Conv2D
    >>> errors = gradcheck(Conv2D(2, 3), np.random.default_rng(0).normal(size=(1, 4, 4, 1)))
    >>> all(e < 1e-6 for e in errors.values())
    True
    """
    rng = np.random.default_rng(seed)
    x = np.array(x, dtype=np.float64)
    saved_dtypes = _set_dtype(layer, np.float64)
    if not layer.built:
        layer.build(x.shape[1:])
        saved_dtypes = {**_set_dtype(layer, np.float64), **saved_dtypes}  # new sub-layers too
    saved = layer.get_weights()
    rng_state = getattr(layer, "rng", None)
    rng_state = None if rng_state is None else rng_state.bit_generator.state
    layer.set_weights([w.astype(np.float64) for w in saved])

    def run(inp):
        if rng_state is not None:
            layer.rng.bit_generator.state = rng_state
        return layer(inp, training=training)

    try:
        y = run(x)
        r = rng.standard_normal(y.shape)
        dx = layer.backward(r)
        analytic = {"dx": dx}
        grads = list(layer.grads)
        for name, g in zip(layer.weight_names, grads, strict=False):
            if g is not None:
                analytic[name] = g

        def loss(inp):
            return float(np.sum(r * run(inp)))

        errors = {"dx": _max_rel_error(lambda: loss(x), x, analytic["dx"], eps, rng, max_entries)}
        for name, w in zip(layer.weight_names, layer.weights, strict=True):
            if name in analytic:
                errors[name] = _max_rel_error(
                    lambda: loss(x), w, analytic[name], eps, rng, max_entries
                )
    finally:
        for sub, dtype in reversed(saved_dtypes.values()):
            sub.dtype = dtype
        layer.set_weights(saved)
        if rng_state is not None:
            layer.rng.bit_generator.state = rng_state
    return errors


def _set_dtype(layer, dtype) -> dict:
    """Set the dtype of ``layer`` and of the layers it is built from; returns the old ones."""
    old, stack = {}, [layer]
    while stack:  # record every old dtype first: a composite's setter may change its parts
        current = stack.pop()
        if id(current) not in old:
            old[id(current)] = (current, current.dtype)
            stack.extend(current._sublayers())
    for current, _ in old.values():
        current.dtype = np.dtype(dtype)
    return old


def _max_rel_error(f, array, analytic, eps, rng, max_entries) -> float:
    """Perturb entries of ``array`` in place (restored) and compare the slope with ``analytic``:
    the largest difference relative to the largest gradient entry seen."""
    flat_idx = np.arange(array.size)
    if array.size > max_entries:
        flat_idx = rng.choice(array.size, size=max_entries, replace=False)
    worst, scale = 0.0, 1e-300
    for i in flat_idx:
        idx = np.unravel_index(i, array.shape)
        old = array[idx]
        array[idx] = old + eps
        up = f()
        array[idx] = old - eps
        down = f()
        array[idx] = old
        numeric = (up - down) / (2 * eps)
        a = analytic[idx]
        worst, scale = max(worst, abs(a - numeric)), max(scale, abs(a), abs(numeric))
    return worst / scale
