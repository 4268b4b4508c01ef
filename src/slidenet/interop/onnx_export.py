"""Export a slidenet model (a Sequential, or a functional Model: any graph of the layers below) to
an ONNX file that ONNX Runtime (and others) can run.

Layout: the graph's inputs are NHWC (NLC for 1D models), exactly the arrays ``model.predict``
takes, and its outputs are what ``model.predict`` returns. Inside, the graph works channels-first
as ONNX's operators require: a tensor is transposed to NCHW before the first Conv, pooling or batch
norm that reads it, and back to NHWC before Flatten, Reshape, a Dense on images and an output.
Flattening an NHWC tensor gives slidenet's feature order, so the Dense kernels are written
unchanged. A merge layer brings its inputs to the layout of its first input; Concatenate's axis
is mapped to that layout (the channels, NHWC axis -1, are axis 1 in NCHW).

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
* Add -> Add (Sum for more than 2 inputs), Subtract -> Sub, Multiply -> Mul (a chain for more
  than 2), Average -> Mean, Maximum -> Max, Minimum -> Min, Concatenate -> Concat.
* Conv3D -> Conv; MaxPooling3D / AveragePooling3D / global 3D poolings as their 2D forms;
  SpatialDropout -> Dropout. The other layers of issue 16 (LeakyReLU, PReLU, ELU, Softmax,
  Layer/GroupNormalization, transposed, depthwise and separable convolutions, UpSampling,
  ZeroPadding, Cropping, Rescaling, Normalization, Resizing, CenterCrop, the Random* layers) and
  the activation names beyond relu / sigmoid / tanh / softmax: see
  :mod:`slidenet.interop._export_more`. Some forms depend on ``opset`` (Gelu from 20,
  LayerNormalization from 17, Reduce* axes as inputs from 18).

Graphs: the graph's inputs are named after the model's inputs (``Input(name=...)``, or the keys
of a dict), its outputs after ``model.output_names`` (a Sequential: 'input' and 'output'). A layer
called twice (shared weights) becomes two nodes reading ONE set of initializers; a Model called
as a layer is flattened into the graph, its layers named ``'inner_model/conv2d'``. Subclassed
models (Python ``call``) have no graph to export.

Weights are written as float32.
"""

from __future__ import annotations

from slidenet import __version__
from slidenet.interop._common import MIN_OPSET, UnsupportedOnnxError, require_onnx
from slidenet.interop._export_layers import Graph, Value, export_layer, unique
from slidenet.utils.files import atomic_write


def _is_model(layer) -> bool:
    from slidenet.models.functional import Model

    return isinstance(layer, Model)


def _check_graph_model(model) -> None:
    if _is_model(model) and not model._functional:
        raise UnsupportedOnnxError(
            f"export_onnx: {model.label} is a subclassed model: its call() is Python code, not a "
            "graph of layers, so it has no ONNX form. Save its weights with "
            "model.save_weights(path), rebuild the same network as a functional Model "
            "(keras.Input + layer calls) or a Sequential, load_weights(path) into it and export "
            "that."
        )


def _walk_layer(g: Graph, layer, xs: list[Value], scope: str) -> list[Value]:
    """The output Values of one call of ``layer`` (a nested Model is flattened into the graph)."""
    if _is_model(layer):
        _check_graph_model(layer)
        return _walk_model(g, layer, xs, f"{scope}{layer.name}/")
    return [export_layer(g, layer, g.prefix(layer, scope), xs)]


def _walk_model(g: Graph, model, xs: list[Value], scope: str = "") -> list[Value]:
    """Write the nodes of a functional Model called on ``xs``; its output Values, in order."""
    values = {id(t): x for t, x in zip(model._inputs, xs, strict=True)}
    for node in model._nodes:
        outs = _walk_layer(g, node.layer, [values[id(t)] for t in node.inputs], scope)
        for t, v in zip(node.outputs, outs, strict=True):
            values[id(t)] = v
    return [values[id(t)] for t in model._outputs]


def _signature(model):
    """(input names, input shapes, output names, output shapes), shapes without the batch."""
    if not _is_model(model):  # Sequential
        return ["input"], [tuple(model._input_shape)], ["output"], [tuple(model.layers[-1]._out)]
    in_names = [str(n) for n in model._input_names]
    out_names, taken = [], set(in_names)
    for name in model.output_names:
        name = str(name)
        while name in taken:  # an output named like an input (Model(x, x)): keep both
            name = f"{name}_output"
        taken.add(name)
        out_names.append(name)
    in_shapes = [t.example_shape for t in model._inputs]
    return in_names, in_shapes, out_names, [tuple(s) for s in model._output_shapes()]


def _name_outputs(g: Graph, onnx, values: list[Value], names: list[str], graph_inputs) -> None:
    """Give each output Value its graph output name: rename the tensor, or add an Identity
    (the output is a graph input, or the same tensor as an earlier output)."""
    renamed: dict[str, str] = {}
    for name, v in zip(names, values, strict=True):
        v = g.channels(v, "last")
        if v.name in graph_inputs or v.name in renamed:
            source = renamed.get(v.name, v.name)
            node_name = unique(name, g.node_names)
            g.nodes.append(onnx.helper.make_node("Identity", [source], [name], name=node_name))
            continue
        for node in g.nodes:
            node.output[:] = [name if o == v.name else o for o in node.output]
            node.input[:] = [name if i == v.name else i for i in node.input]
        renamed[v.name] = name


def to_onnx(model, opset: int = 17):
    """Build the ONNX ModelProto of ``model`` (see the module docstring); nothing is written.

    Args:
        model: a built slidenet Sequential or functional Model.
        opset: ONNX opset version of the default domain (13 or later).

    Returns:
        An ``onnx.ModelProto`` that passed ``onnx.checker.check_model(full_check=True)``.
    """
    onnx = require_onnx("export_onnx")
    _check_graph_model(model)
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
    in_names, in_shapes, out_names, out_shapes = _signature(model)
    g = Graph(onnx, reserved=[*in_names, *out_names], opset=opset)
    xs = [Value(n, len(s) + 1) for n, s in zip(in_names, in_shapes, strict=True)]
    if _is_model(model):
        outs = _walk_model(g, model, xs)
    else:
        (x,) = xs
        for layer in model.layers:
            (x,) = _walk_layer(g, layer, [x], "")
        outs = [x]
    _name_outputs(g, onnx, outs, out_names, set(in_names))
    helper, elem = onnx.helper, onnx.TensorProto.FLOAT

    def info(name, shape):
        return helper.make_tensor_value_info(name, elem, ["N", *shape])

    graph = helper.make_graph(
        g.nodes,
        model.name,
        [info(n, s) for n, s in zip(in_names, in_shapes, strict=True)],
        [info(n, s) for n, s in zip(out_names, out_shapes, strict=True)],
        g.initializers,
    )
    proto = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", opset)],
        producer_name="slidenet",
        producer_version=__version__,
        doc_string=f"slidenet model '{model.name}'; inputs and outputs are channels-last (NHWC).",
    )
    layout = "NHWC" if len(in_shapes[0]) == 3 else "NLC"  # every input is channels-last
    helper.set_model_props(proto, {"slidenet.input_layout": layout})
    onnx.checker.check_model(proto, full_check=True)
    return proto


def export_onnx(model, path, opset: int = 17) -> None:
    """Write ``model`` to ``path`` as ONNX (written atomically).

    The graph's inputs are channels-last, like ``model.predict``'s (batches (N, H, W, C) of
    images or (N, L, C) of signals, float32, any N), and its outputs equal ``model.predict(x)``.

    Args:
        model: a built slidenet Sequential or functional Model (several inputs and outputs,
            merge layers, shared layers and nested Models included).
        path: the .onnx file to write.
        opset: ONNX opset of the default domain (13 or later; 17 by default).

    Raises:
        UnsupportedOnnxError (a ValueError): a layer has no ONNX form (named in the message), or
            the model is a subclassed Model.
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
