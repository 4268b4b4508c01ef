"""The ONNX nodes of one slidenet layer call, and the graph state they are written into.

Every tensor of the graph being written is a :class:`Value`: its ONNX name, its rank (batch axis
included) and its layout, 'last' (slidenet's own NHWC / NLC array) or 'first' (that array
transposed to NCHW / NCL, what ONNX's Conv, pooling and BatchNormalization work on). A layer asks
for the layout it needs (:meth:`Graph.channels`); the Transpose is written once per tensor and
layout, however many layers read it.

Names: value names (tensors and initializers) and node names are unique in the graph. A layer's
weights are initializers named after the layer (``'conv2d/kernel'``) and written once: a layer
called twice (shared weights) gives two nodes that read the same initializers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from slidenet.interop._common import UnsupportedOnnxError, to_channels_first, to_channels_last
from slidenet.interop._export_more import activation_value, export_more
from slidenet.layers import merge
from slidenet.layers.convolutional import Conv2D
from slidenet.layers.core import Activation, Dense, Dropout, Flatten, InputLayer, Reshape
from slidenet.layers.normalization import BatchNormalization
from slidenet.layers.pooling import _GlobalPooling, _Pooling2D

EXPORTABLE = (
    "Conv1D, Conv2D, Conv3D, Conv1DTranspose, Conv2DTranspose, DepthwiseConv2D, "
    "SeparableConv2D, the poolings (1D, 2D, 3D, global), Dense, Flatten, Reshape, Dropout, "
    "SpatialDropout1D/2D/3D, BatchNormalization, LayerNormalization, GroupNormalization, "
    "Activation, ReLU, LeakyReLU, PReLU, ELU, Softmax, UpSampling1D/2D/3D, ZeroPadding1D/2D/3D, "
    "Cropping1D/2D/3D, Rescaling, Normalization, Resizing, CenterCrop, the Random* augmentation "
    "layers (their inference form), ResidualBlock, Add, Subtract, Multiply, Average, Maximum, "
    "Minimum, Concatenate, and functional Models"
)


@dataclass(frozen=True)
class Value:
    """One tensor of the graph: ONNX name, rank (batch included), 'last' or 'first' layout."""

    name: str
    rank: int
    layout: str = "last"


def unique(base: str, used: set[str]) -> str:
    name, i = base, 1
    while name in used:
        name, i = f"{base}_{i}", i + 1
    used.add(name)
    return name


class Graph:
    """The nodes and initializers written so far."""

    def __init__(self, onnx, reserved=(), opset: int = 17):
        self.onnx = onnx
        self.opset = opset  # of the default domain: some layers have other forms in older ones
        self.nodes: list = []
        self.initializers: list = []
        self.values: set[str] = set(reserved)  # tensor and initializer names
        self.node_names: set[str] = set()
        self.consts: dict[str, str] = {}  # key -> initializer name
        self.prefixes: dict[int, str] = {}  # id(layer) -> the name its nodes and weights use
        self.transposed: dict[tuple[str, str], Value] = {}

    def prefix(self, layer, scope: str = "") -> str:
        """The unique name of ``layer`` in this graph (``scope`` for layers of nested models)."""
        if id(layer) not in self.prefixes:
            taken = set(self.prefixes.values())
            self.prefixes[id(layer)] = unique(f"{scope}{layer.name}", taken)
        return self.prefixes[id(layer)]

    def const(self, key: str, array) -> str:
        """An initializer, written once per ``key`` (a shared layer's second call reuses it)."""
        if key not in self.consts:
            name = unique(key, self.values)
            self.initializers.append(self.onnx.numpy_helper.from_array(np.asarray(array), name))
            self.consts[key] = name
        return self.consts[key]

    def node(self, op: str, inputs, name: str, **attrs) -> str:
        """Append a node with one output; returns the output's (unique) name."""
        out = unique(name, self.values)
        node_name = unique(name, self.node_names)
        self.nodes.append(
            self.onnx.helper.make_node(op, list(inputs), [out], name=node_name, **attrs)
        )
        return out

    def channels(self, x: Value, want: str) -> Value:
        """``x`` in channels-'first' or -'last' layout (itself for rank <= 2)."""
        if x.rank <= 2 or x.layout == want:
            return Value(x.name, x.rank, want if x.rank <= 2 else x.layout)
        if (x.name, want) not in self.transposed:
            perm = to_channels_first(x.rank) if want == "first" else to_channels_last(x.rank)
            suffix = "to_nchw" if want == "first" else "to_nhwc"
            y = self.node("Transpose", [x.name], f"{x.name}/{suffix}", perm=list(perm))
            self.transposed[x.name, want] = Value(y, x.rank, want)
        return self.transposed[x.name, want]


def _f32(array) -> np.ndarray:
    return np.ascontiguousarray(array, dtype=np.float32)


def _activation(g: Graph, layer, name: str, x: Value) -> Value:
    act = getattr(layer, "activation", "linear")
    y = activation_value(g, act, x, name)
    if y is None:  # pragma: no cover - every slidenet activation has a form
        raise UnsupportedOnnxError(
            f"export_onnx: {layer.label}: activation {act!r} has no ONNX form."
        )
    return y


def _flat_pads(pads) -> list[int]:
    """((t, b), (l, r)) -> ONNX's [t, l, b, r] (all begins, then all ends)."""
    return [int(p[0]) for p in pads] + [int(p[1]) for p in pads]


def _conv(g: Graph, layer, name: str, x: Value, activate: bool = True) -> Value:
    """Conv2D / Conv1D (on a channels-first tensor)."""
    x = g.channels(x, "first")
    kernel = _f32(layer.kernel)
    rank = kernel.ndim - 2
    w = kernel.transpose(rank + 1, rank, *range(rank))  # (F.., D, K) -> (K, D, F..)
    pads = layer.pads if rank != 1 else (layer.pads,)
    inputs = [x.name, g.const(f"{name}/kernel", w)]
    if layer.use_bias:
        inputs.append(g.const(f"{name}/bias", _f32(layer.bias)))
    y = g.node(
        "Conv",
        inputs,
        name,
        kernel_shape=list(layer.kernel_size),
        strides=list(layer.strides),
        dilations=list(layer.dilation_rate),
        pads=_flat_pads(pads),
        **({"group": layer.groups} if getattr(layer, "groups", 1) != 1 else {}),
    )
    y = Value(y, x.rank, "first")
    return _activation(g, layer, name, y) if activate else y


def _batchnorm(g: Graph, layer, name: str, x: Value) -> Value:
    x = g.channels(x, "first")
    names = [g.const(f"{name}/{n}", _f32(getattr(layer, n))) for n in layer.weight_names]
    y = g.node(
        "BatchNormalization",
        [x.name, *names],
        name,
        epsilon=float(layer.epsilon),
        momentum=float(layer.momentum),
    )
    return Value(y, x.rank, x.layout)


def _pool(g: Graph, layer, name: str, x: Value) -> Value:
    x = g.channels(x, "first")
    pads, pool, strides, _ = layer._geometry(layer._in)
    if layer.rank == 1:  # the 1D layers pool a 1 x L image
        pads, pool, strides = pads[1:], pool[1:], strides[1:]
    attrs = {"kernel_shape": list(pool), "strides": list(strides), "pads": _flat_pads(pads)}
    if layer.kind == "max":
        y = g.node("MaxPool", [x.name], name, **attrs)
    elif layer.kind == "avg":
        y = g.node("AveragePool", [x.name], name, count_include_pad=0, **attrs)
    else:  # sum: the mean over the whole window (padding counted as zeros) times the window size
        mean = g.node("AveragePool", [x.name], f"{name}/mean", count_include_pad=1, **attrs)
        size = g.const(f"{name}/window_size", np.array(float(np.prod(pool)), np.float32))
        y = g.node("Mul", [mean, size], name)
    return Value(y, x.rank, "first")


def _residual(g: Graph, block, name: str, x: Value) -> Value:
    def sub(part: str) -> str:
        return f"{name}/{part}"

    h = _batchnorm(g, block.bn1, sub("bn1"), _conv(g, block.conv1, sub("conv1"), x, False))
    h = Value(g.node("Relu", [h.name], sub("relu1")), h.rank, h.layout)
    h = _batchnorm(g, block.bn2, sub("bn2"), _conv(g, block.conv2, sub("conv2"), h, False))
    s = g.channels(x, "first")
    if block.shortcut_conv is not None:
        s = _conv(g, block.shortcut_conv, sub("shortcut_conv"), s, False)
        s = _batchnorm(g, block.shortcut_bn, sub("shortcut_bn"), s)
    added = g.node("Add", [h.name, s.name], sub("add"))
    return Value(g.node("Relu", [added], name), h.rank, "first")


def _dense(g: Graph, layer, name: str, x: Value) -> Value:
    if x.rank == 2:
        inputs = [x.name, g.const(f"{name}/kernel", _f32(layer.kernel))]
        if layer.use_bias:
            inputs.append(g.const(f"{name}/bias", _f32(layer.bias)))
        y = Value(g.node("Gemm", inputs, name), 2)
    else:  # acts on the last axis: channels-last, MatMul (+ Add)
        x = g.channels(x, "last")
        kernel = g.const(f"{name}/kernel", _f32(layer.kernel))
        y = g.node("MatMul", [x.name, kernel], f"{name}/matmul" if layer.use_bias else name)
        if layer.use_bias:
            y = g.node("Add", [y, g.const(f"{name}/bias", _f32(layer.bias))], name)
        y = Value(y, x.rank, "last")
    return _activation(g, layer, name, y)


ELEMENTWISE = {
    merge.Add: "Sum",
    merge.Subtract: "Sub",
    merge.Multiply: "Mul",
    merge.Average: "Mean",
    merge.Maximum: "Max",
    merge.Minimum: "Min",
}


def _merge(g: Graph, layer, name: str, xs: list[Value]) -> Value:
    """Merge layers: every input in the first input's layout, then one op (Mul: a chain)."""
    layout = xs[0].layout
    xs = [g.channels(x, layout) for x in xs]
    rank, names = xs[0].rank, [x.name for x in xs]
    if isinstance(layer, merge.Concatenate):
        axis = layer.axis if layer.axis > 0 else rank + layer.axis  # NHWC, batch counted
        if layout == "first" and rank > 2:
            axis = to_channels_first(rank).index(axis)
        return Value(g.node("Concat", names, name, axis=axis), rank, layout)
    op = next(op for cls, op in ELEMENTWISE.items() if isinstance(layer, cls))
    if op == "Sum" and len(names) == 2:
        op = "Add"
    if op == "Mul":  # binary in ONNX: ((x1 * x2) * x3) ...
        y = names[0]
        for i, other in enumerate(names[1:], 1):
            y = g.node("Mul", [y, other], name if i == len(names) - 1 else f"{name}/mul{i}")
        return Value(y, rank, layout)
    return Value(g.node(op, names, name), rank, layout)


def export_layer(g: Graph, layer, name: str, xs: list[Value]) -> Value:
    """Append the nodes of one call of ``layer`` (named ``name``) on ``xs``; its output Value."""
    from slidenet.layers.residual import ResidualBlock

    if isinstance(layer, merge._Merge):
        return _merge(g, layer, name, xs)
    (x,) = xs
    out_rank = len(layer._out) + 1
    if isinstance(layer, InputLayer):
        return x
    if isinstance(layer, ResidualBlock):
        y = _residual(g, layer, name, x)
    elif isinstance(layer, Conv2D):  # Conv1D too
        y = _conv(g, layer, name, x)
    elif isinstance(layer, _Pooling2D):  # the 1D poolings too
        y = _pool(g, layer, name, x)
    elif isinstance(layer, _GlobalPooling):
        x = g.channels(x, "first")
        op = "GlobalMaxPool" if layer.kind == "max" else "GlobalAveragePool"
        pooled = g.node(op, [x.name], f"{name}/pool")
        y = Value(g.node("Flatten", [pooled], name, axis=1), 2)
    elif isinstance(layer, Dense):
        y = _dense(g, layer, name, x)
    elif isinstance(layer, Flatten):
        x = g.channels(x, "last")
        y = Value(g.node("Flatten", [x.name], name, axis=1), 2)
    elif isinstance(layer, Reshape):
        x = g.channels(x, "last")
        shape = g.const(f"{name}/shape", np.array([0, *layer._out], np.int64))
        y = Value(g.node("Reshape", [x.name, shape], name), out_rank)
    elif isinstance(layer, Dropout):
        ratio = g.const(f"{name}/ratio", np.array(layer.rate, np.float32))
        y = Value(g.node("Dropout", [x.name, ratio], name), x.rank, x.layout)
    elif isinstance(layer, BatchNormalization):
        y = _batchnorm(g, layer, name, x)
    elif isinstance(layer, Activation):  # ReLU too
        y = _activation(g, layer, name, x)
    elif (y := export_more(g, layer, name, x)) is not None:
        pass
    else:
        raise UnsupportedOnnxError(
            f"export_onnx: {layer.label} ({type(layer).__name__}) has no ONNX form. Layers that "
            f"export: {EXPORTABLE}."
        )
    if y.rank != out_rank:  # pragma: no cover - a guard for new layer types
        raise UnsupportedOnnxError(f"export_onnx: {layer.label}: rank bookkeeping failed.")
    return y
