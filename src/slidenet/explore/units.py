"""What one unit computes: the numbers of the page's click-to-expand panel.

A conv unit at (y, x) of filter k is "one number: the dot product of an Fh x Fw x D chunk of the
layer below with the filter, plus the bias", then the activation. :func:`conv_unit` returns that
chunk (from the zero-padded input), the filter ``kernel[:, :, :, k]``, their element-wise
products, the sum, the bias, the value before and after the layer's own activation function
(``slidenet.ops.activations.FORWARD``), and the value in the layer's output map, which it equals
up to float32 rounding. Pooling units give their window and the winner (max) or the mean
(average); dense units give every input's contribution and the largest ones.

Windows are inclusive ranges ``{"top", "left", "bottom", "right"}`` in the coordinates of the
layer below (rows and columns may lie in the padding, outside 0..H-1); ``input_window`` is the
unit's receptive field traced back to the model's input, clipped to the image.
"""

from __future__ import annotations

import numpy as np

from slidenet.ops.activations import FORWARD
from slidenet.ops.pool import pool2d_geometry
from slidenet.ops.shapes import resolve_padding

__all__ = ["conv_unit", "dense_unit", "input_window", "other_unit", "pool_unit"]

#: How many of a dense unit's inputs are listed as its largest contributors.
TOP_CONTRIBUTORS = 12


def _floats(a) -> list:
    """An array as nested lists of Python floats; padding (NaN or infinite) becomes None."""
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == 0:
        return float(a) if np.isfinite(a) else None
    return (
        [_floats(v) for v in a] if a.ndim > 1 else [float(v) if np.isfinite(v) else None for v in a]
    )


def _activate(name: str, z: np.ndarray, dtype) -> np.ndarray:
    """The layer's activation, by the same function the layer runs, on z (n,) -> (n,)."""
    return FORWARD[name](np.asarray(z, dtype=dtype)[None])[0][0]


def _window(top, left, fh, fw, dh=1, dw=1) -> dict:
    return {
        "top": int(top),
        "left": int(left),
        "bottom": int(top + (fh - 1) * dh),
        "right": int(left + (fw - 1) * dw),
    }


def _geometry(column, below):
    """((pt, pb), (pl, pr)), strides, dilations, window of a sliding layer; None otherwise."""
    layer = column.layer
    if column.kind == "pool":
        pads, pool, strides, _ = pool2d_geometry(
            (1, *below.shape), layer.pool_size, layer.strides, layer.padding
        )
        return pads, strides, (1, 1), pool
    size = getattr(layer, "kernel_size", None)
    if size is None or len(size) != 2 or "Transpose" in type(layer).__name__:
        return None
    dilations = tuple(getattr(layer, "dilation_rate", (1, 1)))
    pads = getattr(layer, "pads", None)
    if pads is None:
        pads = resolve_padding(layer.padding, below.shape[:2], size, layer.strides, dilations)
    return pads, tuple(layer.strides), dilations, tuple(size)


def input_window(network, index: int, rows, cols) -> dict | None:
    """The receptive field, in the model's input, of rows x cols (inclusive (first, last) pairs)
    of column ``index``'s output; None when a layer on the way has no spatial layout."""
    columns = network.columns
    (r0, r1), (c0, c1) = rows, cols
    while index != 0:
        column = columns[index]
        if not column.inputs:
            return None
        below = columns[column.inputs[0]]
        if len(column.shape) != 3 or len(below.shape) != 3:
            return None
        geometry = _geometry(column, below)
        if geometry is not None:
            ((pt, _), (pl, _)), (sh, sw), (dh, dw), (fh, fw) = geometry
            r0, r1 = r0 * sh - pt, r1 * sh - pt + (fh - 1) * dh
            c0, c1 = c0 * sw - pl, c1 * sw - pl + (fw - 1) * dw
        elif column.shape[:2] != below.shape[:2]:
            return None  # e.g. upsampling: no window to draw
        index = column.inputs[0]
    h, w = columns[0].shape[:2]
    return {
        "top": max(int(r0), 0),
        "left": max(int(c0), 0),
        "bottom": min(int(r1), h - 1),
        "right": min(int(c1), w - 1),
        "height": int(r1 - r0 + 1),
        "width": int(c1 - c0 + 1),
    }


def conv_unit(network, index, values, y: int, x: int, k: int) -> dict:
    """The dot product behind output (y, x, k) of the Conv2D column ``index``.

    Args:
        network: the :class:`~slidenet.explore.network.Network`. values: a run's column outputs.
        y, x, k: the unit (row, column, filter) in the layer's output (Ho, Wo, K).

    Returns:
        A JSON-ready dict: ``patch`` (Fh, Fw, D_in/groups) from the zero-padded input,
        ``kernel`` (Fh, Fw, D_in/groups), ``products``, ``channel_sums`` (the products summed
        per input channel), ``padding`` (Fh, Fw) booleans, ``sum``,
        ``bias``, ``value`` (sum + bias, before the activation), ``activated``, ``map_value`` (the
        layer's output there), ``window`` (in the layer below), ``input_window``.
    """
    column = network.columns[index]
    layer, below = column.layer, column.inputs[0]
    inp = values[below]
    (pt, pb), (pl, pr) = layer.pads
    (sh, sw), (dh, dw), (fh, fw) = layer.strides, layer.dilation_rate, layer.kernel_size
    n_filters, groups = layer.filters, layer.groups
    depth = inp.shape[-1] // groups
    g = k // (n_filters // groups)
    xp = np.pad(inp, ((pt, pb), (pl, pr), (0, 0)))
    top, left = y * sh, x * sw
    patch = xp[top : top + (fh - 1) * dh + 1 : dh, left : left + (fw - 1) * dw + 1 : dw]
    patch = patch[:, :, g * depth : (g + 1) * depth].astype(np.float64)
    kernel = layer.kernel[:, :, :, k].astype(np.float64)
    products = patch * kernel
    rows = top - pt + dh * np.arange(fh)
    cols = left - pl + dw * np.arange(fw)
    padding = ~((rows[:, None] >= 0) & (rows[:, None] < inp.shape[0]))
    padding = padding | ~((cols[None, :] >= 0) & (cols[None, :] < inp.shape[1]))
    biases = layer.bias.astype(np.float64) if layer.use_bias else np.zeros(n_filters)
    group = slice(g * (n_filters // groups), (g + 1) * (n_filters // groups))
    z_group = np.tensordot(patch, layer.kernel[:, :, :, group].astype(np.float64), 3)
    z_all = np.zeros(n_filters)
    z_all[group] = z_group + biases[group]
    total = float(products.sum())
    value = total + float(biases[k])
    z_all[k] = value
    activated = _activate(layer.activation, z_all, layer.dtype)[k]
    return {
        "layer": column.name,
        "kind": "conv",
        "unit": {"y": y, "x": x, "k": k},
        "patch": _floats(patch),
        "kernel": _floats(kernel),
        "products": _floats(products),
        "channel_sums": _floats(products.sum(axis=(0, 1))),
        "padding": padding.tolist(),
        "sum": total,
        "bias": float(biases[k]),
        "value": value,
        "activation": layer.activation,
        "activated": float(activated),
        "map_value": float(values[index][y, x, k]),
        "window": _window(top - pt, left - pl, fh, fw, dh, dw),
        "step": [dh, dw],
        "below": network.columns[below].name,
        "input_window": input_window(network, index, (y, y), (x, x)),
    }


def pool_unit(network, index, values, y: int, x: int, k: int) -> dict:
    """The window behind output (y, x, k) of a pooling column: its values (None for padding)
    and, for max pooling, which input won; for average pooling the mean of the real inputs."""
    column = network.columns[index]
    layer, below = column.layer, column.inputs[0]
    inp = values[below]
    (pt, pb), (pl, pr) = pool2d_geometry(
        (1, *inp.shape), layer.pool_size, layer.strides, layer.padding
    )[0]
    (sh, sw), (ph, pw) = layer.strides, layer.pool_size
    xp = np.pad(inp[:, :, k].astype(np.float64), ((pt, pb), (pl, pr)), constant_values=np.nan)
    patch = xp[y * sh : y * sh + ph, x * sw : x * sw + pw]
    real = np.isfinite(patch)
    out = {
        "layer": column.name,
        "kind": "pool",
        "pool": layer.kind,
        "unit": {"y": y, "x": x, "k": k},
        "patch": _floats(patch),
        "padding": (~real).tolist(),
        "map_value": float(values[index][y, x, k]),
        "window": _window(y * sh - pt, x * sw - pl, ph, pw),
        "below": network.columns[below].name,
        "input_window": input_window(network, index, (y, y), (x, x)),
    }
    if layer.kind == "max":
        flat = np.where(real, patch, -np.inf).argmax()
        wy, wx = divmod(int(flat), pw)
        out.update(value=float(patch[wy, wx]), winner=[wy, wx])
        out["winner_at"] = [y * sh - pt + wy, x * sw - pl + wx]
    else:
        total, count = float(patch[real].sum()), int(real.sum())
        out.update(sum=total, count=count, value=total / count if layer.kind == "avg" else total)
    return out


def dense_unit(network, index, values, k: int) -> dict:
    """Unit k of a Dense column: inputs x (D,), weights kernel[:, k], products, sum, bias, value
    before and after the activation, and the inputs that contribute most (largest |x_i w_ik|),
    with their (y, x, channel) when the layer below flattens a map."""
    column = network.columns[index]
    layer, below = column.layer, column.inputs[0]
    inp = values[below].astype(np.float64)
    weights = layer.kernel[:, k].astype(np.float64)
    products = inp * weights
    biases = layer.bias.astype(np.float64) if layer.use_bias else np.zeros(layer.units)
    z_all = inp @ layer.kernel.astype(np.float64) + biases
    total = float(products.sum())
    value = total + float(biases[k])
    z_all[k] = value
    activated = _activate(layer.activation, z_all, layer.dtype)[k]
    source = network.columns[below]
    spatial = None
    if source.inputs and len(network.columns[source.inputs[0]].shape) == 3:
        if type(source.layer).__name__ == "Flatten":
            spatial = network.columns[source.inputs[0]].shape
    top = np.argsort(-np.abs(products), kind="stable")[:TOP_CONTRIBUTORS]
    contributors = []
    for i in top:
        entry = {
            "index": int(i),
            "input": float(inp[i]),
            "weight": float(weights[i]),
            "product": float(products[i]),
        }
        if spatial is not None:
            entry["at"] = [int(v) for v in np.unravel_index(int(i), spatial)]
        contributors.append(entry)
    return {
        "layer": column.name,
        "kind": "dense",
        "unit": {"k": k},
        "inputs": int(inp.size),
        "sum": total,
        "bias": float(biases[k]),
        "value": value,
        "activation": layer.activation,
        "activated": float(activated),
        "map_value": float(values[index][k]),
        "top": contributors,
        "rest": float(total - products[top].sum()),
        "below": source.name,
    }


def other_unit(network, index, values, y=None, x=None, k=0) -> dict:
    """A unit of a column without a panel of its own (flatten, batch norm, merge ...): its value."""
    column = network.columns[index]
    at = (k,) if len(column.shape) == 1 else (y, x, k)
    return {
        "layer": column.name,
        "kind": column.kind,
        "unit": {"y": y, "x": x, "k": k},
        "map_value": float(values[index][at]),
    }
