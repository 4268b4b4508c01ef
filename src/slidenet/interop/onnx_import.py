"""Import an ONNX graph into a slidenet Sequential, converting NCHW layouts and weights to NHWC.

The importer walks the graph from its input to its output, one node (or one known group of nodes)
at a time, and keeps track of how the current ONNX tensor relates to slidenet's tensor:

* ``last``: the same array (slidenet's NHWC, or any rank-2 tensor);
* ``first``: slidenet's tensor transposed to channels-first (NCHW / NCL), what Conv works on;
* ``perm``: a flattened NCHW tensor, i.e. slidenet's flat vector with its features in CHW order
  (``onnx[j] == slidenet[perm[j]]``); the next Gemm / MatMul gets its kernel rows permuted;
* ``squeezed``: a global pooling's (N, C, 1, 1), slidenet's (N, C).

A graph input is taken as NHWC when the file says so (metadata ``slidenet.input_layout``, written
by slidenet's exporter) or when a Transpose to channels-first reads it; any other image input as
NCHW. Either way the imported model takes NHWC arrays, and for an NCHW
graph its output is the ONNX output in NHWC order. Supported ops are listed in ``SUPPORTED``; a
graph with other ops is refused with the list of those nodes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from slidenet.interop._common import (
    OnnxFileError,
    UnsupportedOnnxError,
    require_onnx,
    to_channels_first,
)

SUPPORTED = (
    "Conv MaxPool AveragePool GlobalMaxPool GlobalAveragePool ReduceMean ReduceMax Gemm MatMul Add "
    "Mul Relu Sigmoid Tanh Softmax Flatten Reshape Squeeze Transpose BatchNormalization Dropout "
    "Identity Constant"
).split()


class Importer:
    """State of one import: constants, graph edges, the model built so far, the layout."""

    def __init__(self, onnx, proto, where: str):
        from slidenet.models.sequential import Sequential

        self.onnx, self.where, self.graph = onnx, where, proto.graph
        self.opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 1)
        self.consts = {t.name: onnx.numpy_helper.to_array(t) for t in self.graph.initializer}
        self.consumers: dict[str, list] = {}
        self.folded: set[int] = set()  # Constant nodes, and Identity nodes of constants
        # one Python object per node, kept alive: nodes are told apart by id()
        self.nodes = list(self.graph.node)
        for node in self.nodes:
            if node.op_type == "Constant":
                self.consts[node.output[0]] = self._constant_value(node)
                self.folded.add(id(node))
                continue
            if node.op_type == "Identity" and node.input[0] in self.consts:
                self.consts[node.output[0]] = self.consts[node.input[0]]
                self.folded.add(id(node))
                continue
            for name in node.input:
                if name and name not in self.consts:
                    self.consumers.setdefault(name, []).append(node)
        props = {p.key: p.value for p in proto.metadata_props}
        self.declared_layout = props.get("slidenet.input_layout")  # set by slidenet's exporter
        self.visited: set[int] = set()
        self.names: set[str] = set()
        self.model = Sequential(name=_clean(self.graph.name) or "imported_onnx")
        self.last_output = None  # ONNX tensor produced by the last layer added (for fusion)

    # ----- reading nodes -----------------------------------------------------------------------
    def _constant_value(self, node):
        for attr in node.attribute:
            if attr.name == "value":
                return self.onnx.numpy_helper.to_array(attr.t)
            if attr.name in ("value_float", "value_int"):
                return np.array(self.onnx.helper.get_attribute_value(attr))
            if attr.name in ("value_floats", "value_ints"):
                return np.array(self.onnx.helper.get_attribute_value(attr))
        raise UnsupportedOnnxError(f"{self.where}: Constant node '{node.name}' has no value.")

    def attrs(self, node) -> dict:
        return {a.name: self.onnx.helper.get_attribute_value(a) for a in node.attribute}

    def label(self, node) -> str:
        return f"{node.op_type} node '{node.name or node.output[0]}'"

    def fail(self, node, why: str):
        return UnsupportedOnnxError(f"{self.where}: {self.label(node)}: {why}")

    def const(self, node, index: int, optional: bool = False):
        """The constant feeding input ``index`` of ``node`` (None if absent and optional)."""
        name = node.input[index] if index < len(node.input) else ""
        if not name:
            if optional:
                return None
            raise self.fail(node, f"input {index} is missing.")
        if name not in self.consts:
            raise self.fail(
                node,
                f"input '{name}' is computed in the graph; slidenet imports weights and shapes "
                "stored as initializers or Constant nodes.",
            )
        return self.consts[name]

    def users(self, tensor: str) -> list:
        return self.consumers.get(tensor, [])

    def single_user(self, tensor: str):
        """The one node reading ``tensor``, or None (none, several, or also a graph output)."""
        users = self.users(tensor)
        outputs = {o.name for o in self.graph.output}
        return users[0] if len(users) == 1 and tensor not in outputs else None

    def take(self, node) -> str:
        """Mark ``node`` converted; check extra outputs are unused; return its main output."""
        self.visited.add(id(node))
        outputs = {o.name for o in self.graph.output}
        for extra in node.output[1:]:
            if extra and (self.users(extra) or extra in outputs):
                raise self.fail(node, f"its output '{extra}' is used; only the first is supported.")
        return node.output[0]

    # ----- building the model ------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        """slidenet's current per-example shape (batch axis excluded)."""
        layers = self.model.layers
        return tuple(layers[-1]._out) if layers else tuple(self.model._input_shape)

    def layer_name(self, node, op: str | None = None) -> str:
        """A unique layer name from a node name: '/features/conv1/Conv' -> 'features_conv1'."""
        op = (op or node.op_type).lower()
        parts = [p for p in (node.name or "").replace(".", "_").split("/") if p]
        if parts and parts[-1].lower() == op:
            parts = parts[:-1]
        name = _clean("_".join(parts))
        if not name or name[0].isdigit():
            name = f"{op}_{name}".rstrip("_")
        base, i = name, 1
        while name in self.names:
            name, i = f"{base}_{i}", i + 1
        self.names.add(name)
        return name

    def add(self, layer, weights=None, output: str | None = None) -> None:
        self.model.add(layer)
        if weights is not None:
            layer.set_weights(weights)
        self.last_output = output


def _clean(text: str) -> str:
    return "".join(c if c.isalnum() or c in "_-." else "_" for c in text).strip("_")


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


def _graph_input(imp: Importer):
    """(name, per-example dims, is channels-last) of the one real graph input."""
    inputs = [i for i in imp.graph.input if i.name not in imp.consts]
    if len(inputs) != 1 or len(imp.graph.output) != 1:
        raise UnsupportedOnnxError(
            f"{imp.where}: the graph has {len(inputs)} inputs and {len(imp.graph.output)} outputs; "
            "slidenet imports graphs with one input and one output."
        )
    info = inputs[0]
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
            f"{imp.where}: input '{info.name}' has shape {dims}; slidenet needs a batch axis and "
            "fixed sizes for the others (e.g. [N, 1, 28, 28])."
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
    return info.name, dims[1:], channels_last


def import_onnx(source):
    """Build a slidenet Sequential from an ONNX file (or an ``onnx.ModelProto``).

    Weights are converted from ONNX's NCHW to slidenet's NHWC (conv kernels (K, D, Fh, Fw) ->
    (Fh, Fw, D, K); Gemm/MatMul kernels after a Flatten of an NCHW tensor get their rows
    reordered from CHW to HWC). The model takes NHWC arrays: for a graph with an NCHW input,
    feed ``x.transpose(0, 2, 3, 1)``. Activations after Conv / Gemm become ``activation=``.

    Args:
        source: path of a .onnx file, or an ``onnx.ModelProto``.

    Returns:
        A built, uncompiled Sequential (compile it to fine-tune).

    Raises:
        FileNotFoundError: no file at the path.
        OnnxFileError (a ValueError): the file is not a valid ONNX model.
        UnsupportedOnnxError (a ValueError): the graph has ops or a structure slidenet cannot
            express; the message lists the nodes.
    """
    from slidenet.interop import _import_ops
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
    name, dims, channels_last = _graph_input(imp)
    rank = len(dims) + 1
    shape = tuple(dims) if channels_last else (*dims[1:], dims[0])
    imp.model.add(Input(shape))
    state = {"x": name, "rank": rank, "layout": "last" if channels_last else "first"}
    while True:
        users = imp.users(state["x"])
        if not users:
            break
        if len(users) == 1:
            node = users[0]
            data = [i for i in node.input if i and i not in imp.consts]
            if data != [state["x"]]:
                raise imp.fail(node, f"it reads {data}; slidenet imports chains of one input.")
            _import_ops.convert(imp, node, state)
        else:
            residual_block(imp, users, state)
    output = imp.graph.output[0].name
    left = [n for n in imp.nodes if id(n) not in imp.visited | imp.folded]
    if state["x"] != output or left:
        listed = ", ".join(f"{n.op_type} '{n.name or n.output[0]}'" for n in left)
        raise UnsupportedOnnxError(
            f"{where}: the chain from the input ends at '{state['x']}', not at the output "
            f"'{output}'" + (f"; nodes off that chain: {listed}." if listed else ".")
        )
    if state["layout"] == "perm":
        raise UnsupportedOnnxError(
            f"{where}: the output is a flattened NCHW tensor; slidenet would give its values in "
            "NHWC order. Add a Gemm/MatMul after the Flatten, or export the graph in NHWC order."
        )
    return imp.model
