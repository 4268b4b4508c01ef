"""ONNX's spatial ops, channels-first: Conv, MaxPool, AveragePool (and sum pooling), global
pooling, and ReduceMean / ReduceMax over the spatial axes; and the padding arithmetic they share.

Padding: ONNX gives explicit ``pads`` (all begins, then all ends) or ``auto_pad``; slidenet's
names are 'valid', 'same' (TensorFlow's split, the extra cell at the end) or explicit pairs.
"""

from __future__ import annotations

import numpy as np

from slidenet.ops.shapes import same_pads


def need_layout(imp, node, state, layouts, what: str) -> None:
    if state["layout"] not in layouts:
        kinds = {
            "last": "a channels-last tensor",
            "first": "a channels-first tensor",
            "perm": "a flattened NCHW tensor",
            "squeezed": "a globally pooled (N, C, 1, 1) tensor",
        }
        raise imp.fail(node, f"{what} cannot follow {kinds[state['layout']]} here.")


def pad_pairs(imp, node, attrs, in_sizes, kernel, strides, dilations):
    """Per-axis (before, after) paddings of a Conv or pooling node (auto_pad resolved)."""
    axes = len(kernel)
    mode = attrs.get("auto_pad", b"NOTSET")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    if mode in ("SAME_UPPER", "SAME_LOWER"):
        pairs = [
            same_pads(*args) for args in zip(in_sizes, kernel, strides, dilations, strict=True)
        ]
        return tuple(p if mode == "SAME_UPPER" else p[::-1] for p in pairs)
    if mode == "VALID":
        return ((0, 0),) * axes
    pads = list(attrs.get("pads", [0] * 2 * axes))
    return tuple((int(pads[i]), int(pads[i + axes])) for i in range(axes))


def padding_spec(pairs, in_sizes, kernel, strides, dilations):
    """slidenet's name for the paddings: 'valid', 'same' (TensorFlow's split) or None."""
    if all(p == (0, 0) for p in pairs):
        return "valid"
    same = tuple(same_pads(*a) for a in zip(in_sizes, kernel, strides, dilations, strict=True))
    return "same" if tuple(pairs) == same else None


def conv(imp, node, state) -> None:
    from slidenet.layers.convolutional import Conv1D, Conv2D

    w = imp.const(node, 1)
    b = imp.const(node, 2, optional=True)
    a = imp.attrs(node)
    axes = w.ndim - 2
    groups = int(a.get("group", 1))
    if groups != 1 and axes != 2:
        raise imp.fail(node, f"group={groups} on a 1D convolution has no layer.")
    if axes not in (1, 2) or state["rank"] != axes + 2:
        raise imp.fail(node, f"a {axes}D convolution on a rank-{state['rank']} tensor.")
    need_layout(imp, node, state, ("first",), "Conv")
    kernel = tuple(int(k) for k in w.shape[2:])
    strides = tuple(a.get("strides", [1] * axes))
    dilations = tuple(a.get("dilations", [1] * axes))
    in_sizes = imp.shape[:-1]
    pairs = pad_pairs(imp, node, a, in_sizes, kernel, strides, dilations)
    padding = padding_spec(pairs, in_sizes, kernel, strides, dilations)
    if padding is None:
        padding = pairs if axes == 2 else pairs[0]
    cls = Conv2D if axes == 2 else Conv1D

    def make():
        return cls(
            int(w.shape[0]),
            kernel,
            strides=strides,
            padding=padding,
            dilation_rate=dilations,
            use_bias=b is not None,
            name=imp.layer_name(node),
            **({"groups": groups} if groups != 1 else {}),
        )

    kernel_nhwc = w.transpose(*range(2, w.ndim), 1, 0)  # (K, D, F..) -> (F.., D, K)
    y = imp.take(node)
    imp.add_weighted(node, make, [kernel_nhwc] if b is None else [kernel_nhwc, b], y)
    state["x"] = y


def _pool_layer(imp, node, state, kind: str, name: str):
    from slidenet.layers import pooling

    a = imp.attrs(node)
    kernel = tuple(int(k) for k in a["kernel_shape"])
    axes = len(kernel)
    if axes not in (1, 2) or state["rank"] != axes + 2:
        raise imp.fail(node, f"a {axes}D pooling on a rank-{state['rank']} tensor.")
    need_layout(imp, node, state, ("first",), node.op_type)
    if a.get("ceil_mode", 0) or any(d != 1 for d in a.get("dilations", [1] * axes)):
        raise imp.fail(node, "ceil_mode=1 or dilations have no slidenet pooling.")
    strides = tuple(a.get("strides", [1] * axes))
    in_sizes = imp.shape[:-1]
    pairs = pad_pairs(imp, node, a, in_sizes, kernel, strides, (1,) * axes)
    padding = padding_spec(pairs, in_sizes, kernel, strides, (1,) * axes)
    if padding is None:
        raise imp.fail(
            node,
            f"pads {[p for pair in pairs for p in pair]} are neither 'valid' nor TensorFlow's "
            "'same' split, the two paddings slidenet's poolings have.",
        )
    include_pad = bool(a.get("count_include_pad", 0))
    if kind == "avg" and padding == "same" and include_pad:
        raise imp.fail(node, "count_include_pad=1 with padding: slidenet averages real cells.")
    if kind == "sum" and padding == "same" and not include_pad:
        raise imp.fail(node, "count_include_pad=0 times the window size is not a sum pooling.")
    names = {
        ("max", 2): "MaxPooling2D",
        ("avg", 2): "AveragePooling2D",
        ("sum", 2): "SumPooling2D",
        ("max", 1): "MaxPooling1D",
        ("avg", 1): "AveragePooling1D",
    }
    if (kind, axes) not in names:
        raise imp.fail(node, "slidenet has no 1D sum pooling.")
    cls = getattr(pooling, names[kind, axes])
    return cls(kernel, strides=strides, padding=padding, name=name)


def max_pool(imp, node, state) -> None:
    layer = _pool_layer(imp, node, state, "max", imp.layer_name(node))
    state["x"] = imp.take(node)
    imp.add(layer, output=state["x"])


def average_pool(imp, node, state) -> None:
    """AveragePool, or a sum pooling: AveragePool (padding counted) times the window size."""
    size = float(np.prod(imp.attrs(node)["kernel_shape"]))
    mul = imp.single_user(node.output[0])
    factor = None
    if mul is not None and mul.op_type == "Mul":
        other = [i for i in mul.input if i != node.output[0]]
        if len(other) == 1 and other[0] in imp.consts and imp.consts[other[0]].size == 1:
            factor = float(imp.consts[other[0]].reshape(()))
    if factor is not None and np.isclose(factor, size, rtol=1e-6):
        layer = _pool_layer(imp, node, state, "sum", imp.layer_name(mul))
        imp.take(node)
        state["x"] = imp.take(mul)
    else:
        layer = _pool_layer(imp, node, state, "avg", imp.layer_name(node))
        state["x"] = imp.take(node)
    imp.add(layer, output=state["x"])


def global_pool(imp, node, state) -> None:
    from slidenet.layers import pooling

    need_layout(imp, node, state, ("first",), node.op_type)
    if state["rank"] not in (3, 4):
        raise imp.fail(node, f"global pooling of a rank-{state['rank']} tensor.")
    kind = "Max" if "Max" in node.op_type else "Average"
    cls = getattr(pooling, f"Global{kind}Pooling{state['rank'] - 2}D")
    state["x"] = imp.take(node)
    imp.add(cls(name=imp.layer_name(node)), output=state["x"])
    state["layout"] = "squeezed"


def reduce(imp, node, state) -> None:
    """ReduceMean / ReduceMax over all spatial axes: a global pooling."""
    from slidenet.layers import pooling

    a = imp.attrs(node)
    axes = a.get("axes")
    if axes is None and len(node.input) > 1 and node.input[1]:
        axes = imp.const(node, 1).tolist()
    rank = state["rank"]
    axes = sorted(int(x) % rank for x in (axes or []))
    keep = a.get("keepdims", 1)
    spatial = {"first": list(range(2, rank)), "last": list(range(1, rank - 1))}
    if (
        rank not in (3, 4)
        or axes != spatial.get(state["layout"])
        or (keep and state["layout"] == "last")
    ):
        raise imp.fail(
            node, f"only a reduction over all spatial axes is a global pooling (axes {axes})."
        )
    kind = "Max" if node.op_type == "ReduceMax" else "Average"
    cls = getattr(pooling, f"Global{kind}Pooling{rank - 2}D")
    state["x"] = imp.take(node)
    imp.add(cls(name=imp.layer_name(node)), output=state["x"])
    state["layout"] = "squeezed" if keep else "last"
    if not keep:
        state["rank"] = 2
