"""ONNX ops that combine tensors computed in the graph -> slidenet's merge layers.

Add / Sum -> Add, Sub -> Subtract, Mul -> Multiply, Max -> Maximum, Min -> Minimum, Mean ->
Average, Concat -> Concatenate. ONNX broadcasts; slidenet's merge layers take inputs of one shape,
so inputs of different shapes are refused. Every input must relate to slidenet's tensor in the
same way (the same layout; see :mod:`slidenet.interop._importer`): then the ONNX op on the ONNX
tensors is the slidenet layer on slidenet's tensors, and the output has that layout too. Concat's
axis is mapped from the ONNX layout to NHWC (NCHW axis 1, the channels, is slidenet's axis -1);
a Concat of flattened NCHW features concatenates the feature orders.
"""

from __future__ import annotations

import numpy as np

from slidenet.interop._common import to_channels_first

LAYERS = {
    "Add": "Add",
    "Sum": "Add",
    "Sub": "Subtract",
    "Mul": "Multiply",
    "Max": "Maximum",
    "Min": "Minimum",
    "Mean": "Average",
    "Concat": "Concatenate",
}
#: ops that take any number of inputs (one input: the identity)
VARIADIC = ("Sum", "Max", "Min", "Mean", "Concat")


def is_merge(imp, node) -> bool:
    """Does ``node`` combine tensors (rather than apply a constant to one)?"""
    data = imp.data_inputs(node)
    all_data = len(data) == len([i for i in node.input if i])
    return node.op_type in LAYERS and all_data and (len(data) >= 2 or node.op_type in VARIADIC)


def _describe(states) -> str:
    return ", ".join(f"'{s['x']}' ({s['layout']} {s['t'].example_shape})" for s in states)


def _concat_axis(imp, node, states) -> tuple[int, dict]:
    """slidenet's Concatenate axis (batch counted) and the extra state of the output."""
    layout, rank = states[0]["layout"], states[0]["rank"]
    axis = int(imp.attrs(node).get("axis", 1)) % rank
    if axis == 0:
        raise imp.fail(node, "a Concat along the batch axis has no slidenet layer.")
    if layout in ("perm", "squeezed") and axis != 1:
        raise imp.fail(node, f"a Concat along axis {axis} of (N, C, 1, 1) or flat features.")
    if layout == "perm":
        sizes = [int(np.prod(s["t"].example_shape)) for s in states]
        offsets = np.cumsum([0, *sizes[:-1]])
        perm = np.concatenate([s["perm"] + o for s, o in zip(states, offsets, strict=True)])
        return -1, {"perm": perm}
    if layout == "first" and rank > 2:
        axis = to_channels_first(rank)[axis]
    return (-1 if axis == rank - 1 else axis), {}


def merge(imp, node, states: list[dict]) -> dict:
    """Convert ``node`` whose data inputs have ``states``; returns the state of its output."""
    from slidenet.layers import merge as merge_layers

    op = node.op_type
    if len(states) == 1:  # Sum / Max / Min / Mean / Concat of one tensor: the tensor itself
        state = dict(states[0])
        state["x"] = imp.take(node)
        imp.producer.pop(state["x"], None)
        return state
    first = states[0]
    same = all(
        s["layout"] == first["layout"]
        and s["rank"] == first["rank"]
        and (s["layout"] != "perm" or op == "Concat" or np.array_equal(s["perm"], first["perm"]))
        for s in states
    )
    if not same:
        raise imp.fail(
            node,
            f"its inputs {_describe(states)} are laid out differently (NCHW, NHWC or flattened); "
            "slidenet merges tensors of one layout.",
        )
    extra, kwargs = {}, {}
    if op == "Concat":
        kwargs["axis"], extra = _concat_axis(imp, node, states)
    elif any(s["t"].example_shape != first["t"].example_shape for s in states):
        raise imp.fail(
            node,
            f"its inputs {_describe(states)} differ in shape: ONNX broadcasts, slidenet's merge "
            "layers take inputs of one shape.",
        )
    layer = getattr(merge_layers, LAYERS[op])(name=imp.layer_name(node), **kwargs)
    try:
        t = layer([s["t"] for s in states])
    except ValueError as e:
        raise imp.fail(node, str(e)) from None
    out = imp.take(node)
    imp.producer[out] = layer
    return {**first, **extra, "x": out, "t": t}
