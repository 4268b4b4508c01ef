"""One converter per ONNX op with one data input: each adds slidenet layers for a node and
updates the state of the tensor (``x``, ``t``, ``rank``, ``layout`` and for 'perm' the feature
order ``perm``; see :mod:`slidenet.interop._importer`).

Conv and the poolings are in :mod:`slidenet.interop._import_spatial`, the ops with several data
inputs (Add, Sum, Sub, Mul, Max, Min, Mean, Concat) in :mod:`slidenet.interop._import_merge`.
"""

from __future__ import annotations

import numpy as np

from slidenet.interop._common import to_channels_first, to_channels_last
from slidenet.interop._import_more import HANDLERS as MORE_HANDLERS
from slidenet.interop._import_spatial import (
    average_pool,
    conv,
    global_pool,
    max_pool,
    need_layout,
    reduce,
)

ACTIVATIONS = {"Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "Softmax": "softmax"}


def convert(imp, node, state) -> None:
    """Convert ``node`` (whose one data input is ``state['x']``)."""
    handler = HANDLERS.get(node.op_type, refuse)
    handler(imp, node, state)


def _dense(imp, node, state, kernel, bias, out: str, extra=()) -> None:
    from slidenet.layers.core import Dense

    if state["layout"] == "perm":  # onnx[j] = slidenet[perm[j]]: row j belongs to perm[j]
        reordered = np.empty_like(kernel)
        reordered[state["perm"]] = kernel
        kernel = reordered
        extra = (*extra, state["perm"].tobytes())
        state["layout"] = "last"

    def make():
        return Dense(int(kernel.shape[1]), use_bias=bias is not None, name=imp.layer_name(node))

    imp.add_weighted(node, make, [kernel] if bias is None else [kernel, bias], out, extra)
    state["x"] = out


def gemm(imp, node, state) -> None:
    a = imp.attrs(node)
    if state["rank"] != 2 or a.get("transA", 0):
        raise imp.fail(node, "Gemm needs a (N, features) input without transA.")
    w = imp.const(node, 1) * a.get("alpha", 1.0)
    w = w.T if a.get("transB", 0) else w
    c = imp.const(node, 2, optional=True)
    if c is not None:
        c = c * a.get("beta", 1.0)
        if c.size not in (1, w.shape[1]):
            raise imp.fail(node, f"bias of shape {list(c.shape)} is not one value per unit.")
        c = np.broadcast_to(c.reshape(-1), (w.shape[1],)).copy()
    _dense(imp, node, state, w, c, imp.take(node))


def matmul(imp, node, state) -> None:
    """MatMul by a constant (N, ..., D) @ (D, units), and a following Add of a bias vector."""
    w = imp.const(node, 1)
    if w.ndim != 2 or node.input[0] != state["x"]:
        raise imp.fail(node, "only x @ W with a constant 2D W is a Dense layer.")
    if state["rank"] > 2:
        need_layout(imp, node, state, ("last",), "MatMul over the last axis")
    out = imp.take(node)
    bias, extra = None, ()
    add = imp.single_user(out)
    if add is not None and add.op_type == "Add":
        other = [i for i in add.input if i != out]
        if len(other) == 1 and other[0] in imp.consts and imp.consts[other[0]].size == w.shape[1]:
            bias, extra = imp.consts[other[0]].reshape(-1), (other[0],)
            out = imp.take(add)
    _dense(imp, node, state, w, bias, out, extra)


def activation(imp, node, state, act: str | None = None) -> None:
    """An activation node: ``activation=`` of the Conv / Dense before it, or an Activation layer
    (``act``: the slidenet name, for ops beyond ACTIVATIONS)."""
    from slidenet.layers.base import ActivationMixin
    from slidenet.layers.core import Activation

    act = act or ACTIVATIONS[node.op_type]
    rank, layout = state["rank"], state["layout"]
    if act == "softmax":
        axis = imp.attrs(node).get("axis", -1 if imp.opset >= 13 else 1) % rank
        ok = (rank == 2 and axis == 1) or (
            imp.opset >= 13 and axis == (1 if layout == "first" else rank - 1)
        )
        if not ok or layout == "squeezed":
            raise imp.fail(node, f"softmax over axis {axis} is not over the channels.")
    y = imp.take(node)
    last = imp.producer.get(node.input[0])
    fusable = (
        isinstance(last, ActivationMixin)
        and type(last).__name__
        in ("Conv2D", "Conv1D", "Dense", "Conv2DTranspose", "Conv1DTranspose")
        and imp.activation_fuses(last, node)
    )
    if fusable and last.activation == "linear":
        last._set_activation(act)  # Conv / Dense + activation -> activation=
        imp.producer[y] = last
    elif fusable and last.activation == act and id(last) in imp.calls:
        imp.producer[y] = last  # a later call of a shared layer: its activation= applies
    else:
        imp.add(Activation(act, name=imp.layer_name(node)), output=y)
    state["x"] = y


def flatten(imp, node, state) -> None:
    from slidenet.layers.core import Flatten

    axis = imp.attrs(node).get("axis", 1) % state["rank"]
    if axis != 1:
        raise imp.fail(node, f"Flatten with axis={axis}; slidenet keeps the batch axis (axis=1).")
    y = imp.take(node)
    _flatten_to(imp, node, state, Flatten, y)


def _flatten_to(imp, node, state, cls, y) -> None:
    layout, shape = state["layout"], imp.shape
    if state["rank"] > 2 and layout in ("last", "first"):
        imp.add(cls(name=imp.layer_name(node)), output=y)
        if layout == "first":  # ONNX flattens C, H, W; slidenet H, W, C
            idx = np.arange(int(np.prod(shape))).reshape(shape)
            state["perm"] = idx.transpose(len(shape) - 1, *range(len(shape) - 1)).ravel()
            state["layout"] = "perm"
    elif layout == "squeezed":
        state["layout"] = "last"
    state["x"], state["rank"] = y, 2


def reshape(imp, node, state) -> None:
    from slidenet.layers.core import Flatten, Reshape

    target = [int(t) for t in imp.const(node, 1).reshape(-1)]
    if imp.attrs(node).get("allowzero", 0) and 0 in target:
        raise imp.fail(node, "allowzero=1 with a 0 in the shape.")
    size = int(np.prod(imp.shape))
    onnx_dims = [None, *_onnx_dims(imp.shape, state)]
    per = [onnx_dims[i] if t == 0 else t for i, t in enumerate(target)][1:]
    if per.count(-1) > 1 or (target[0] == -1 and -1 in per) or any(p is None for p in per):
        raise imp.fail(node, f"cannot read the shape {target} with a free batch axis.")
    if -1 in per:
        known = int(np.prod([p for p in per if p != -1]))
        per[per.index(-1)] = size // max(known, 1)
    if int(np.prod(per)) != size:
        raise imp.fail(node, f"shape {target} does not hold {size} values per example.")
    y = imp.take(node)
    if len(per) == 1:
        _flatten_to(imp, node, state, Flatten, y)
        return
    need_layout(imp, node, state, ("last",), "Reshape to more than one axis")
    if tuple(per) != tuple(imp.shape):
        imp.add(Reshape(per, name=imp.layer_name(node)), output=y)
    state["x"], state["rank"] = y, len(per) + 1


def _onnx_dims(shape, state):
    if state["layout"] == "first":
        return [shape[-1], *shape[:-1]]
    if state["layout"] == "squeezed":
        return [*shape, *([1] * (state["rank"] - 2))]
    return list(shape)


def squeeze(imp, node, state) -> None:
    a = imp.attrs(node)
    axes = a.get("axes")
    if axes is None and len(node.input) > 1 and node.input[1]:
        axes = imp.const(node, 1).tolist()
    rank = state["rank"]
    if state["layout"] != "squeezed" or sorted(
        int(x) % rank for x in axes or range(2, rank)
    ) != list(range(2, rank)):
        raise imp.fail(node, "only the squeeze of a global pooling's 1x1 axes is supported.")
    state["x"], state["rank"], state["layout"] = imp.take(node), 2, "last"


def transpose(imp, node, state) -> None:
    perm = tuple(imp.attrs(node).get("perm", ()))
    rank, layout = state["rank"], state["layout"]
    if layout == "last" and perm == to_channels_first(rank):
        state["layout"] = "first"
    elif layout == "first" and perm == to_channels_last(rank):
        state["layout"] = "last"
    else:
        raise imp.fail(node, f"perm {list(perm)} is not a change between NHWC and NCHW.")
    state["x"] = imp.take(node)


def batchnorm(imp, node, state) -> None:
    from slidenet.layers.normalization import BatchNormalization

    a = imp.attrs(node)
    if a.get("training_mode", 0):
        raise imp.fail(node, "training_mode=1; export the graph in inference mode.")
    if state["rank"] > 2:
        need_layout(imp, node, state, ("first",), "BatchNormalization")
    params = [np.asarray(imp.const(node, i), np.float64).reshape(-1) for i in range(1, 5)]
    extra = ()
    if state["layout"] == "perm":
        params = [_unpermute(p, state["perm"]) for p in params]
        extra = (state["perm"].tobytes(),)

    def make():
        return BatchNormalization(
            momentum=float(a.get("momentum", 0.9)),
            epsilon=float(a.get("epsilon", 1e-5)),
            name=imp.layer_name(node),
        )

    state["x"] = imp.take(node)
    imp.add_weighted(node, make, params, state["x"], extra)


def _unpermute(values, perm):
    out = np.empty_like(values)
    out[perm] = values
    return out


def dropout(imp, node, state) -> None:
    from slidenet.layers.core import Dropout

    rate = imp.attrs(node).get("ratio", 0.5)
    if len(node.input) > 1 and node.input[1]:
        rate = float(imp.const(node, 1))
    if len(node.input) > 2 and node.input[2] and bool(imp.const(node, 2)):
        raise imp.fail(node, "training_mode=True; export the graph in inference mode.")
    state["x"] = imp.take(node)
    imp.add(Dropout(float(rate), name=imp.layer_name(node)), output=state["x"])


def identity(imp, node, state) -> None:
    state["x"] = imp.take(node)
    if node.input[0] in imp.producer and imp.single_user(node.input[0]) is node:
        imp.producer[state["x"]] = imp.producer[node.input[0]]


def refuse(imp, node, state) -> None:
    what = {
        "Add": "an Add of a constant (other than a MatMul's bias vector)",
        "Sub": "a Sub of a constant",
        "Concat": "a Concat with a constant",
        "Mul": "a Mul by a constant (other than an AveragePool's window size: a sum pooling)",
    }
    raise imp.fail(
        node,
        f"{what.get(node.op_type, 'this use')} has no slidenet layer; slidenet's merge layers "
        "combine tensors computed in the graph.",
    )


HANDLERS = {
    "Conv": conv,
    "MaxPool": max_pool,
    "AveragePool": average_pool,
    "GlobalMaxPool": global_pool,
    "GlobalAveragePool": global_pool,
    "ReduceMean": reduce,
    "ReduceMax": reduce,
    "Gemm": gemm,
    "MatMul": matmul,
    "Relu": activation,
    "Sigmoid": activation,
    "Tanh": activation,
    "Softmax": activation,
    "Flatten": flatten,
    "Reshape": reshape,
    "Squeeze": squeeze,
    "Transpose": transpose,
    "BatchNormalization": batchnorm,
    "Dropout": dropout,
    "Identity": identity,
    "Add": refuse,
    "Sub": refuse,
    "Mul": refuse,
    **MORE_HANDLERS,
}
