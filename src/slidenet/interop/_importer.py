"""The state of one ONNX import: constants, graph edges, names, and the slidenet graph so far.

Each ONNX tensor that has been converted has a *state* (a dict): ``x`` its ONNX name, ``t`` the
slidenet symbolic tensor (KerasTensor) holding the same values, ``rank`` (batch axis included) and
``layout``, how the ONNX tensor relates to slidenet's:

* ``last``: the same array (slidenet's NHWC, or any rank-2 tensor);
* ``first``: slidenet's tensor transposed to channels-first (NCHW / NCL), what Conv works on;
* ``perm``: a flattened NCHW tensor, i.e. slidenet's flat vector with its features in CHW order
  (``onnx[j] == slidenet[state['perm'][j]]``); the next Gemm / MatMul gets its rows permuted;
* ``squeezed``: a global pooling's (N, C, 1, 1), slidenet's (N, C).

A converter (``_import_ops``) gets the state of its node's data input as ``imp.current``, adds
layers with :meth:`Importer.add` (which calls them on ``state['t']``) and leaves the state of its
output behind.
"""

from __future__ import annotations

import numpy as np

from slidenet.interop._common import UnsupportedOnnxError


def clean(text: str) -> str:
    return "".join(c if c.isalnum() or c in "_-." else "_" for c in text).strip("_")


class Importer:
    """State of one import."""

    def __init__(self, onnx, proto, where: str):
        self.onnx, self.where, self.graph = onnx, where, proto.graph
        self.producer_name = proto.producer_name
        self.opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 1)
        self.consts = {t.name: onnx.numpy_helper.to_array(t) for t in self.graph.initializer}
        self.consumers: dict[str, list] = {}
        self.folded: set[int] = set()  # Constant nodes, and Identity nodes of constants
        self.weight_uses: dict[str, int] = {}  # initializer -> how many nodes read it
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
                elif name:
                    self.weight_uses[name] = self.weight_uses.get(name, 0) + 1
        self.outputs = [o.name for o in self.graph.output]
        props = {p.key: p.value for p in proto.metadata_props}
        self.declared_layout = props.get("slidenet.input_layout")  # set by slidenet's exporter
        self.visited: set[int] = set()
        self.names: set[str] = set()
        self.name = clean(self.graph.name) or "imported_onnx"
        self.states: dict[str, dict] = {}  # ONNX tensor -> its state (see the module docstring)
        self.current: dict | None = None  # the state a converter works on
        self.producer: dict[str, object] = {}  # ONNX tensor -> the layer whose call made it
        self.layers: dict[tuple, object] = {}  # sharing key -> layer (shared initializers)
        self.calls: dict[int, list] = {}  # id(layer) -> the nodes that may call it (shared)

    # ----- reading nodes -----------------------------------------------------------------------
    def _constant_value(self, node):
        for attr in node.attribute:
            if attr.name == "value":
                return self.onnx.numpy_helper.to_array(attr.t)
            if attr.name in ("value_float", "value_int", "value_floats", "value_ints"):
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

    def data_inputs(self, node) -> list[str]:
        return [i for i in node.input if i and i not in self.consts]

    def users(self, tensor: str) -> list:
        return self.consumers.get(tensor, [])

    def single_user(self, tensor: str):
        """The one node reading ``tensor``, or None (none, several, or also a graph output)."""
        users = self.users(tensor)
        return users[0] if len(users) == 1 and tensor not in self.outputs else None

    def take(self, node) -> str:
        """Mark ``node`` converted; check extra outputs are unused; return its main output."""
        self.visited.add(id(node))
        for extra in node.output[1:]:
            if extra and (self.users(extra) or extra in self.outputs):
                raise self.fail(node, f"its output '{extra}' is used; only the first is supported.")
        return node.output[0]

    # ----- building the model ------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        """slidenet's per-example shape (batch axis excluded) of the current tensor."""
        return tuple(self.current["t"].example_shape)

    def unique_name(self, name: str) -> str:
        base, i = name, 1
        while name in self.names:
            name, i = f"{base}_{i}", i + 1
        self.names.add(name)
        return name

    def layer_name(self, node, op: str | None = None) -> str:
        """A unique layer name from a node name: '/features/conv1/Conv' -> 'features_conv1'."""
        op = (op or node.op_type).lower()
        parts = [p for p in (node.name or "").replace(".", "_").split("/") if p]
        if parts and parts[-1].lower() == op:
            parts = parts[:-1]
        name = clean("_".join(parts))
        if not name or name[0].isdigit():
            name = f"{op}_{name}".rstrip("_")
        return self.unique_name(name)

    def add(self, layer, weights=None, output: str | None = None) -> None:
        """Call ``layer`` on the current tensor (building it), then set its weights."""
        self.current["t"] = layer(self.current["t"])
        if weights is not None:
            layer.set_weights(weights)
        if output is not None:
            self.producer[output] = layer

    def add_weighted(self, node, make, weights, output: str, extra=()) -> None:
        """Add the layer of a node with weights (Conv, Gemm, MatMul, BatchNormalization).

        Nodes reading the same initializers with the same attributes, on inputs of one shape,
        share ONE layer (called once per node): ``make()`` runs for the first of them only.
        ``extra``: what else the weights' conversion depended on (the feature order of a Gemm).
        """
        weights_in = tuple(node.input[1:])
        attrs = repr(sorted(self.attrs(node).items()))
        key = (node.op_type, weights_in, attrs, self.shape, extra)
        layer = self.layers.get(key)
        if layer is not None:
            self.add(layer, output=output)
            return
        layer = make()
        if any(self.weight_uses.get(w, 0) > 1 for w in weights_in if w):  # may be called again
            self.calls[id(layer)] = [
                n for n in self.nodes if n.op_type == node.op_type and n.input[1:] == node.input[1:]
            ]
        self.layers[key] = layer
        self.add(layer, weights, output=output)

    def activation_fuses(self, layer, node) -> bool:
        """May the activation ``node`` (reading ``layer``'s output alone) become ``layer``'s
        ``activation=``? For a shared layer only if every node calling it is followed by the same
        activation; its later calls' activation nodes then pass their input through."""
        if self.single_user(node.input[0]) is not node:
            return False
        if id(layer) not in self.calls:
            return True
        want = (node.op_type, self.attrs(node))
        for call in self.calls[id(layer)]:
            out = call.output[0]
            user = self.single_user(out)
            if call.op_type == "MatMul" and user is not None and user.op_type == "Add":
                user = self.single_user(user.output[0])
            if user is None or (user.op_type, self.attrs(user)) != want:
                return False
        return True
