"""Import an ONNX graph into slidenet, converting NCHW layouts and weights to NHWC.

The importer walks the graph's nodes in order (ONNX stores them topologically sorted), one node
(or one known group of nodes) at a time, calling slidenet layers on symbolic tensors
(``keras.Input``): any DAG of the supported ops becomes a functional ``Model``, and a graph that
is a plain chain (one input, one output, no branches) a ``Sequential``. For each ONNX tensor it
keeps how that tensor relates to slidenet's (its layout: see :mod:`slidenet.interop._importer`).

A graph input is taken as NHWC when the file says so (metadata ``slidenet.input_layout``, written
by slidenet's exporter) or when a Transpose to channels-first reads it; any other image input as
NCHW. Either way the imported model takes NHWC arrays, and for an NCHW graph its outputs are the
ONNX outputs in NHWC order. Supported ops are listed in ``SUPPORTED``; a graph with other ops is
refused with the list of those nodes. Conv / Gemm / MatMul / BatchNormalization nodes that read
the same initializers become ONE slidenet layer called once per node (shared weights). LeakyRelu,
Elu, Selu, Softplus, HardSigmoid, PRelu, ConvTranspose, Pad and Resize: see
:mod:`slidenet.interop._import_more`.
"""

from __future__ import annotations

from pathlib import Path

from slidenet.interop._common import (
    OnnxFileError,
    UnsupportedOnnxError,
    require_onnx,
    to_channels_first,
)
from slidenet.interop._importer import Importer, clean

SUPPORTED = (
    "Conv MaxPool AveragePool GlobalMaxPool GlobalAveragePool ReduceMean ReduceMax Gemm MatMul Add "
    "Sum Sub Mul Max Min Mean Concat Relu Sigmoid Tanh Softmax Flatten Reshape Squeeze Transpose "
    "BatchNormalization Dropout Identity Constant LeakyRelu Elu Selu Softplus HardSigmoid PRelu "
    "ConvTranspose Pad Resize"
).split()


def load_proto(source):
    """(onnx module, checked ModelProto, description) from a path or a ModelProto."""
    onnx = require_onnx("import_onnx")
    if isinstance(source, onnx.ModelProto):
        proto, where = source, "import_onnx"
    else:
        path = Path(source)
        where = f"import_onnx: '{path}'"
        if not path.is_file():
            raise FileNotFoundError(f"import_onnx: no such file: '{path}'.")
        try:
            proto = onnx.load(str(path))
        except Exception as e:  # protobuf's DecodeError, external-data errors, ...
            raise OnnxFileError(
                f"{where} is not an ONNX model ({type(e).__name__}: {e}); the file may be "
                "truncated or corrupt."
            ) from None
    if not proto.graph.node or not proto.graph.output:
        raise OnnxFileError(
            f"{where} holds no ONNX graph (no nodes or no outputs); it is not an ONNX model file."
        )
    try:
        onnx.checker.check_model(proto)
    except Exception as e:  # onnx.checker.ValidationError and friends
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise OnnxFileError(f"{where} is not a valid ONNX model: {first}") from None
    return onnx, proto, where


def _graph_inputs(imp: Importer):
    """[(name, per-example dims, is channels-last)] of the real graph inputs."""
    inputs = [i for i in imp.graph.input if i.name not in imp.consts]
    found = []
    for info in inputs:
        tensor = info.type.tensor_type
        if tensor.elem_type not in (imp.onnx.TensorProto.FLOAT, imp.onnx.TensorProto.DOUBLE):
            raise UnsupportedOnnxError(
                f"{imp.where}: input '{info.name}' has element type "
                f"{imp.onnx.TensorProto.DataType.Name(tensor.elem_type)}; slidenet imports float "
                "graphs."
            )
        dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
        if len(dims) < 2 or any(d is None or d < 1 for d in dims[1:]):
            raise UnsupportedOnnxError(
                f"{imp.where}: input '{info.name}' has shape {dims}; slidenet needs a batch axis "
                "and fixed sizes for the others (e.g. [N, 1, 28, 28])."
            )
        rank = len(dims)
        first = imp.single_user(info.name)
        channels_last = (
            rank == 2
            or imp.declared_layout in ("NHWC", "NLC")
            or (
                first is not None
                and first.op_type == "Transpose"
                and tuple(imp.attrs(first).get("perm", ())) == to_channels_first(rank)
            )
        )
        found.append((info.name, dims[1:], channels_last))
    return found


def _convert_node(imp: Importer, node) -> None:
    from slidenet.interop import _import_ops
    from slidenet.interop._import_merge import is_merge, merge
    from slidenet.interop._import_residual import residual_block

    data = imp.data_inputs(node)
    missing = [d for d in data if d not in imp.states]
    if missing:  # pragma: no cover - the checker ensures topological order
        raise imp.fail(node, f"it reads {missing}, which no converted node made.")
    if is_merge(imp, node):
        state = merge(imp, node, [imp.states[d] for d in data])
    else:
        if len(data) != 1:
            raise imp.fail(
                node,
                f"it reads {len(data)} computed tensors {data}; slidenet's layer for it takes one.",
            )
        state = imp.current = dict(imp.states[data[0]])
        _import_ops.convert(imp, node, state)
    imp.states[state["x"]] = state
    while residual_block(imp, state):  # its output may start the next block
        imp.states[state["x"]] = state


def _result(imp: Importer, inputs, outputs):
    """A Sequential when the graph is a chain, else a functional Model."""
    from slidenet.models.functional import Model
    from slidenet.models.graph import trace
    from slidenet.models.sequential import Sequential

    nodes = trace(inputs, outputs, imp.where)
    chain = (
        len(inputs) == 1 and len(outputs) == 1 and len({id(n.layer) for n in nodes}) == len(nodes)
    )
    previous = inputs[0]
    for node in nodes:
        chain = chain and not node.as_list and len(node.inputs) == 1
        chain = chain and node.inputs[0] is previous and len(node.outputs) == 1
        previous = node.outputs[0]
    if chain and outputs[0] is previous:
        model = Sequential(name=imp.name)
        model.add(inputs[0])
        for node in nodes:
            model.add(node.layer)
        return model
    return Model(
        inputs if len(inputs) > 1 else inputs[0],
        outputs if len(outputs) > 1 else outputs[0],
        name=imp.name,
    )


def import_onnx(source):
    """Build a slidenet model from an ONNX file (or an ``onnx.ModelProto``).

    Weights are converted from ONNX's NCHW to slidenet's NHWC (conv kernels (K, D, Fh, Fw) ->
    (Fh, Fw, D, K); Gemm/MatMul kernels after a Flatten of an NCHW tensor get their rows
    reordered from CHW to HWC). The model takes NHWC arrays: for a graph with an NCHW input,
    feed ``x.transpose(0, 2, 3, 1)``. Activations after Conv / Gemm become ``activation=``.

    Args:
        source: path of a .onnx file, or an ``onnx.ModelProto``.

    Returns:
        A built, uncompiled model: a ``Sequential`` when the graph is a chain (one input, one
        output, no branches), else a functional ``Model`` (inputs and outputs in the graph's
        order, a list when there are several). Compile it to fine-tune.

    Raises:
        FileNotFoundError: no file at the path.
        OnnxFileError (a ValueError): the file is not a valid ONNX model.
        UnsupportedOnnxError (a ValueError): the graph has ops or a structure slidenet cannot
            express; the message names the nodes.
    """
    from slidenet.interop._import_residual import residual_block
    from slidenet.layers.core import Input

    onnx, proto, where = load_proto(source)
    imp = Importer(onnx, proto, where)
    bad = [n for n in imp.nodes if n.op_type not in SUPPORTED or n.domain not in ("", "ai.onnx")]
    if bad:
        listed = ", ".join(f"{n.op_type} '{n.name or n.output[0]}'" for n in bad)
        raise UnsupportedOnnxError(
            f"{where}: {len(bad)} node(s) have no slidenet equivalent: {listed}. Supported ops: "
            f"{', '.join(SUPPORTED)}."
        )
    inputs = []
    for name, dims, channels_last in _graph_inputs(imp):
        shape = tuple(dims) if channels_last else (*dims[1:], dims[0])
        t = Input(shape, name=imp.unique_name(clean(name) or "input"))
        inputs.append(t)
        layout = "last" if channels_last else "first"
        imp.states[name] = state = {"x": name, "t": t, "rank": len(dims) + 1, "layout": layout}
        while residual_block(imp, state):
            imp.states[state["x"]] = state
    for node in imp.nodes:
        if id(node) not in imp.visited and id(node) not in imp.folded:
            _convert_node(imp, node)
    if not inputs:
        raise UnsupportedOnnxError(f"{where}: the graph has no inputs (only constants).")
    outputs = []
    for name in imp.outputs:
        state = imp.states.get(name)
        if state is None:
            raise UnsupportedOnnxError(f"{where}: the output '{name}' is a constant.")
        if state["layout"] == "perm":
            raise UnsupportedOnnxError(
                f"{where}: the output '{name}' is a flattened NCHW tensor; slidenet would give its "
                "values in NHWC order. Add a Gemm/MatMul after the Flatten, or export the graph "
                "in NHWC order."
            )
        outputs.append(state["t"])
    return _result(imp, inputs, outputs)
