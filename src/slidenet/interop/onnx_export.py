"""Export a slidenet Sequential to an ONNX file that ONNX Runtime (and others) can run.

Layout: the graph's input is NHWC (NLC for 1D models), exactly the arrays ``model.predict`` takes,
and its output is what ``model.predict`` returns. Inside, the graph works channels-first as ONNX's
operators require: a Transpose to NCHW is placed before the first Conv, pooling or batch norm, and a
Transpose back to NHWC before Flatten, Reshape, a Dense on images and the output. Flattening an NHWC
tensor gives slidenet's feature order, so the Dense kernels are written unchanged.

Layer -> ONNX operators:

* Conv2D / Conv1D -> Conv with explicit ``pads`` (asymmetric TensorFlow 'same' included), strides,
  dilations; kernel (Fh, Fw, D, K) written as (K, D, Fh, Fw). ``activation=`` -> Relu, Sigmoid,
  Tanh or Softmax (over the channel axis).
* MaxPooling -> MaxPool; AveragePooling -> AveragePool with ``count_include_pad=0`` (Keras' 'same'
  divides by the real cells of a border window); SumPooling2D -> AveragePool with
  ``count_include_pad=1`` times the window size (Mul).
* GlobalMax/AveragePooling -> GlobalMaxPool / GlobalAveragePool + Flatten.
* Dense -> Gemm (MatMul + Add on inputs with more axes); Flatten -> Flatten; Reshape -> Reshape.
* Dropout -> Dropout (its rate kept; the identity at inference); BatchNormalization -> its
  inference form (moving statistics); Activation / ReLU -> the activation.
* ResidualBlock -> Conv, BatchNormalization, Relu, Conv, BatchNormalization, the shortcut
  (nothing, or Conv + BatchNormalization), Add, Relu.

Weights are written as float32.
"""

from __future__ import annotations

import numpy as np

from slidenet import __version__
from slidenet.interop._common import (
    MIN_OPSET,
    UnsupportedOnnxError,
    require_onnx,
    to_channels_first,
    to_channels_last,
)
from slidenet.layers.convolutional import Conv2D
from slidenet.layers.core import Activation, Dense, Dropout, Flatten, InputLayer, Reshape
from slidenet.layers.normalization import BatchNormalization
from slidenet.layers.pooling import _GlobalPooling, _Pooling2D
from slidenet.utils.files import atomic_write

ACTIVATIONS = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh", "softmax": "Softmax"}


class _Graph:
    """The nodes and initializers written so far, and the layout of the current tensor."""

    def __init__(self, onnx, rank: int):
        self.onnx = onnx
        self.nodes: list = []
        self.initializers: list = []
        self.tensor = "input"
        self.rank = rank  # rank of the current tensor, batch axis included
        self.layout = "last"  # 'last' (slidenet's NHWC) or 'first' (ONNX's NCHW)

    def const(self, name: str, array) -> str:
        tensor = self.onnx.numpy_helper.from_array(np.asarray(array), name)
        self.initializers.append(tensor)
        return name

    def node(self, op: str, inputs, name: str, **attrs) -> str:
        """Append a node named ``name`` whose one output is also called ``name``."""
        self.nodes.append(self.onnx.helper.make_node(op, list(inputs), [name], name=name, **attrs))
        return name

    def channels(self, want: str, name: str) -> None:
        """Move the current tensor to channels-'first' or -'last' (nothing for rank 2)."""
        if self.rank <= 2 or self.layout == want:
            self.layout = want
            return
        perm = to_channels_first(self.rank) if want == "first" else to_channels_last(self.rank)
        suffix = "to_nchw" if want == "first" else "to_nhwc"
        self.tensor = self.node("Transpose", [self.tensor], f"{name}/{suffix}", perm=list(perm))
        self.layout = want


def _f32(array) -> np.ndarray:
    return np.ascontiguousarray(array, dtype=np.float32)


def _activation(g: _Graph, layer, x: str) -> str:
    act = getattr(layer, "activation", "linear")
    if act == "linear":
        return x
    if act not in ACTIVATIONS:  # pragma: no cover - every slidenet activation is listed
        raise UnsupportedOnnxError(
            f"export_onnx: {layer.label}: activation {act!r} has no ONNX op."
        )
    attrs = {}
    if act == "softmax":
        attrs["axis"] = 1 if (g.layout == "first" and g.rank > 2) else -1
    return g.node(ACTIVATIONS[act], [x], f"{layer.name}/{act}", **attrs)


def _flat_pads(pads) -> list[int]:
    """((t, b), (l, r)) -> ONNX's [t, l, b, r] (all begins, then all ends)."""
    return [int(p[0]) for p in pads] + [int(p[1]) for p in pads]


def _conv(g: _Graph, layer, x: str, activate: bool = True) -> str:
    """Conv2D / Conv1D on a channels-first tensor."""
    kernel = _f32(layer.kernel)
    rank = kernel.ndim - 2
    w = kernel.transpose(rank + 1, rank, *range(rank))  # (F.., D, K) -> (K, D, F..)
    pads = layer.pads if rank == 2 else (layer.pads,)
    inputs = [x, g.const(f"{layer.name}/kernel", w)]
    if layer.use_bias:
        inputs.append(g.const(f"{layer.name}/bias", _f32(layer.bias)))
    y = g.node(
        "Conv",
        inputs,
        layer.name,
        kernel_shape=list(layer.kernel_size),
        strides=list(layer.strides),
        dilations=list(layer.dilation_rate),
        pads=_flat_pads(pads),
    )
    return _activation(g, layer, y) if activate else y


def _batchnorm(g: _Graph, layer, x: str) -> str:
    names = [g.const(f"{layer.name}/{n}", _f32(getattr(layer, n))) for n in layer.weight_names]
    return g.node(
        "BatchNormalization",
        [x, *names],
        layer.name,
        epsilon=float(layer.epsilon),
        momentum=float(layer.momentum),
    )


def _pool(g: _Graph, layer, x: str) -> str:
    pads, pool, strides, _ = layer._geometry(layer._in)
    if layer.rank == 1:  # the 1D layers pool a 1 x L image
        pads, pool, strides = pads[1:], pool[1:], strides[1:]
    attrs = {"kernel_shape": list(pool), "strides": list(strides), "pads": _flat_pads(pads)}
    if layer.kind == "max":
        return g.node("MaxPool", [x], layer.name, **attrs)
    if layer.kind == "avg":
        return g.node("AveragePool", [x], layer.name, count_include_pad=0, **attrs)
    # sum: the mean over the whole window (padding counted as zeros) times the window size
    mean = g.node("AveragePool", [x], f"{layer.name}/mean", count_include_pad=1, **attrs)
    size = g.const(f"{layer.name}/window_size", np.array(float(np.prod(pool)), np.float32))
    return g.node("Mul", [mean, size], layer.name)


def _residual(g: _Graph, block, x: str) -> str:
    h = _batchnorm(g, block.bn1, _conv(g, block.conv1, x, activate=False))
    h = g.node("Relu", [h], f"{block.name}/relu1")
    h = _batchnorm(g, block.bn2, _conv(g, block.conv2, h, activate=False))
    s = x
    if block.shortcut_conv is not None:
        s = _batchnorm(g, block.shortcut_bn, _conv(g, block.shortcut_conv, x, activate=False))
    added = g.node("Add", [h, s], f"{block.name}/add")
    return g.node("Relu", [added], block.name)


def _export_layer(g: _Graph, layer) -> None:
    """Append the nodes of one layer; updates the current tensor, its rank and layout."""
    from slidenet.layers.residual import ResidualBlock

    name, x = layer.name, g.tensor
    out_rank = len(layer._out) + 1
    if isinstance(layer, InputLayer):
        return
    if isinstance(layer, ResidualBlock):
        g.channels("first", name)
        g.tensor = _residual(g, layer, g.tensor)
    elif isinstance(layer, Conv2D):  # Conv1D too
        g.channels("first", name)
        g.tensor = _conv(g, layer, g.tensor)
    elif isinstance(layer, _Pooling2D):  # the 1D poolings too
        g.channels("first", name)
        g.tensor = _pool(g, layer, g.tensor)
    elif isinstance(layer, _GlobalPooling):
        g.channels("first", name)
        op = "GlobalMaxPool" if layer.kind == "max" else "GlobalAveragePool"
        pooled = g.node(op, [g.tensor], f"{name}/pool")
        g.tensor, g.rank, g.layout = g.node("Flatten", [pooled], name, axis=1), 2, "last"
    elif isinstance(layer, Dense):
        if g.rank == 2:
            inputs = [x, g.const(f"{name}/kernel", _f32(layer.kernel))]
            if layer.use_bias:
                inputs.append(g.const(f"{name}/bias", _f32(layer.bias)))
            y = g.node("Gemm", inputs, name)
        else:  # acts on the last axis: channels-last, MatMul (+ Add)
            g.channels("last", name)
            kernel = g.const(f"{name}/kernel", _f32(layer.kernel))
            y = g.node("MatMul", [g.tensor, kernel], f"{name}/matmul" if layer.use_bias else name)
            if layer.use_bias:
                y = g.node("Add", [y, g.const(f"{name}/bias", _f32(layer.bias))], name)
        g.tensor = _activation(g, layer, y)
    elif isinstance(layer, Flatten):
        g.channels("last", name)
        g.tensor, g.rank = g.node("Flatten", [g.tensor], name, axis=1), 2
    elif isinstance(layer, Reshape):
        g.channels("last", name)
        shape = g.const(f"{name}/shape", np.array([0, *layer._out], np.int64))
        g.tensor, g.rank = g.node("Reshape", [g.tensor, shape], name), out_rank
    elif isinstance(layer, Dropout):
        ratio = g.const(f"{name}/ratio", np.array(layer.rate, np.float32))
        g.tensor = g.node("Dropout", [x, ratio], name)
    elif isinstance(layer, BatchNormalization):
        g.channels("first", name)
        g.tensor = _batchnorm(g, layer, g.tensor)
    elif isinstance(layer, Activation):  # ReLU too
        g.tensor = _activation(g, layer, x)
    else:
        raise UnsupportedOnnxError(
            f"export_onnx: {layer.label} ({type(layer).__name__}) has no ONNX form. Layers that "
            "export: Conv1D, Conv2D, the poolings, Dense, Flatten, Reshape, Dropout, "
            "BatchNormalization, Activation, ReLU, ResidualBlock."
        )
    if g.rank != out_rank:  # pragma: no cover - a guard for new layer types
        raise UnsupportedOnnxError(f"export_onnx: {layer.label}: rank bookkeeping failed.")


def to_onnx(model, opset: int = 17):
    """Build the ONNX ModelProto of ``model`` (see the module docstring); nothing is written.

    Args:
        model: a built slidenet Sequential.
        opset: ONNX opset version of the default domain (13 or later).

    Returns:
        An ``onnx.ModelProto`` that passed ``onnx.checker.check_model(full_check=True)``.
    """
    onnx = require_onnx("export_onnx")
    if not getattr(model, "built", False) or not model.layers:
        raise ValueError(
            f"export_onnx: model '{getattr(model, 'name', model)}' is not built or has no layers; "
            "give it an input shape (e.g. Input((28, 28, 1))) and layers first."
        )
    latest = onnx.defs.onnx_opset_version()
    if isinstance(opset, bool) or not isinstance(opset, int) or not MIN_OPSET <= opset <= latest:
        raise ValueError(
            f"export_onnx: opset must be an int from {MIN_OPSET} to {latest} (the installed "
            f"onnx's newest), got {opset!r}."
        )
    in_shape = tuple(model._input_shape)
    g = _Graph(onnx, len(in_shape) + 1)
    for layer in model.layers:
        _export_layer(g, layer)
    g.channels("last", "output")
    if g.tensor == "input":  # only identity layers: still one node, so the graph has an output
        g.tensor = g.node("Identity", ["input"], "output")
    for node in g.nodes:  # the last node's output becomes the graph's 'output'
        node.output[:] = ["output" if o == g.tensor else o for o in node.output]
        node.input[:] = ["output" if i == g.tensor else i for i in node.input]
    helper, elem = onnx.helper, onnx.TensorProto.FLOAT
    graph = helper.make_graph(
        g.nodes,
        model.name,
        [helper.make_tensor_value_info("input", elem, ["N", *in_shape])],
        [helper.make_tensor_value_info("output", elem, ["N", *model.layers[-1]._out])],
        g.initializers,
    )
    proto = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", opset)],
        producer_name="slidenet",
        producer_version=__version__,
        doc_string=f"slidenet model '{model.name}'; input and output are channels-last (NHWC).",
    )
    helper.set_model_props(
        proto, {"slidenet.input_layout": "NHWC" if len(in_shape) == 3 else "NLC"}
    )
    onnx.checker.check_model(proto, full_check=True)
    return proto


def export_onnx(model, path, opset: int = 17) -> None:
    """Write ``model`` to ``path`` as ONNX (written atomically).

    The graph's input is channels-last, like ``model.predict``'s (a batch (N, H, W, C) of images
    or (N, L, C) of signals, float32, any N), and its output equals ``model.predict(x)``.

    Args:
        model: a built slidenet Sequential.
        path: the .onnx file to write.
        opset: ONNX opset of the default domain (13 or later; 17 by default).

    Raises:
        UnsupportedOnnxError (a ValueError): a layer has no ONNX form (named in the message).
        ImportError: the ``onnx`` package is missing (``pip install 'slidenet[onnx]'``).

    >>> import os, tempfile, slidenet
    >>> from slidenet.interop import export_onnx
    >>> model = slidenet.applications.lenet5()
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     export_onnx(model, os.path.join(tmp, "lenet5.onnx"))
    ...     os.path.getsize(os.path.join(tmp, "lenet5.onnx")) > 4 * model.count_params()
    True
    """
    data = to_onnx(model, opset).SerializeToString()
    atomic_write(path, lambda f: f.write(data))
