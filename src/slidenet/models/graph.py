"""The symbolic side of graph models: tensors that carry shapes, and nodes that record calls.

``Input((28, 28, 1))`` returns a :class:`KerasTensor`: a placeholder with a shape (batch axis None)
and a dtype, but no values. Calling a layer on such tensors runs no math: the layer is built for
the shapes (so a kernel that does not fit fails here, naming the layer), and a :class:`Node`
records "this layer was called on these tensors and made these". ``Model(inputs, outputs)`` then
walks the nodes back from the outputs (:func:`trace`) to get the order to run them in.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from slidenet._validation import fmt_shape


class KerasTensor:
    """A symbolic tensor: ``shape`` (None for the batch axis), ``dtype``, and the node that made it.

    It has no values; ``Model(inputs, outputs)`` turns the calls that made it into a model.
    ``a + b``, ``a - b`` and ``a * b`` build ``layers.Add`` / ``Subtract`` / ``Multiply``.
    """

    def __init__(self, shape, dtype="float32", node=None, index=0, name=None):
        self.shape = (None, *shape)
        self.dtype = np.dtype(dtype)
        self.node = node
        self.index = index
        self.name = name

    @property
    def example_shape(self) -> tuple[int, ...]:
        return tuple(self.shape[1:])

    def __repr__(self):
        made_by = f" (from {self.node.layer.label})" if self.node is not None else ""
        return f"<KerasTensor shape={self.shape} dtype={self.dtype.name}{made_by}>"

    def __array__(self, *args, **kwargs):
        raise TypeError(
            f"{self!r} is symbolic: it has a shape but no values. Build a model with "
            "keras.Model(inputs, outputs) and call the model on arrays."
        )

    def _merge(self, other, class_name, op):
        from slidenet.layers import merge

        if not isinstance(other, KerasTensor):
            raise TypeError(
                f"{op} on a symbolic tensor needs another symbolic tensor, got "
                f"{type(other).__name__}; use layers.{class_name}()([a, b]) with two tensors "
                "(constants: a Rescaling or Dense layer)."
            )
        return getattr(merge, class_name)()([self, other])

    def __add__(self, other):
        return self._merge(other, "Add", "+")

    def __sub__(self, other):
        return self._merge(other, "Subtract", "-")

    def __mul__(self, other):
        return self._merge(other, "Multiply", "*")

    def __radd__(self, other):
        return self._merge(other, "Add", "+")

    def __rsub__(self, other):
        return self._merge(other, "Subtract", "-")

    def __rmul__(self, other):
        return self._merge(other, "Multiply", "*")

    __hash__ = object.__hash__
    # NumPy defers to the reflected operators above (array + tensor names layers.Add too)
    __array_ufunc__ = None


@dataclass(eq=False)
class Node:
    """One call of a layer in a graph: ``outputs = layer(inputs)``.

    ``as_list`` says whether the layer took a list (merge layers, multi-input models) or one
    tensor; ``outputs_as_list`` likewise for what it returned.
    """

    layer: object
    inputs: list[KerasTensor]
    as_list: bool
    outputs: list[KerasTensor] = field(default_factory=list)
    outputs_as_list: bool = False


def is_symbolic(x) -> bool:
    """Is x a KerasTensor, or a list / tuple / dict holding one?"""
    if isinstance(x, KerasTensor):
        return True
    if isinstance(x, list | tuple):
        return any(isinstance(v, KerasTensor) for v in x)
    if isinstance(x, dict):
        return any(isinstance(v, KerasTensor) for v in x.values())
    return False


def input_tensor(shape, name=None, dtype="float32") -> KerasTensor:
    """``keras.Input``: a symbolic tensor for one input of a model, made by an InputLayer."""
    from slidenet.layers.core import InputLayer

    layer = InputLayer(shape=shape, name=name, dtype=dtype)
    layer.build(layer.shape)
    tensor = KerasTensor(layer.shape, layer.dtype, name=layer.name)
    tensor.node = Node(layer, [], False, [tensor])
    layer._inbound_nodes = [tensor.node]
    return tensor


def symbolic_call(layer, inputs):
    """Call ``layer`` on symbolic tensors: build it for their shapes and record a node.

    Returns one KerasTensor, or a list of them for a layer with several outputs (a model).
    """
    as_list = isinstance(inputs, list | tuple)
    tensors = list(inputs) if as_list else [inputs]
    for t in tensors:
        if not isinstance(t, KerasTensor):
            raise TypeError(
                f"{layer.label}: mixes symbolic tensors and {type(t).__name__} values in one "
                "call; every input of a call on keras.Input(...) tensors must be a tensor."
            )
    shapes = [t.example_shape for t in tensors]
    out_shapes = layer.symbolic_output_shapes(shapes if as_list else shapes[0])
    outputs_as_list = isinstance(out_shapes, list)
    node = Node(layer, tensors, as_list, outputs_as_list=outputs_as_list)
    node.outputs = [
        KerasTensor(s, layer.dtype, node=node, index=i)
        for i, s in enumerate(out_shapes if outputs_as_list else [out_shapes])
    ]
    layer.__dict__.setdefault("_inbound_nodes", []).append(node)
    return node.outputs if outputs_as_list else node.outputs[0]


def trace(inputs: list[KerasTensor], outputs: list[KerasTensor], who: str) -> list[Node]:
    """The nodes that lead from ``inputs`` to ``outputs``, in an order that runs each node after
    the nodes that make its inputs (depth-first, post-order).

    Raises ValueError for: an output that depends on a tensor not computed from ``inputs`` (a
    missing Input, or a tensor of another graph), an input that no output uses, a cycle, and
    anything that is not a KerasTensor.
    """
    for kind, group in (("inputs", inputs), ("outputs", outputs)):
        for t in group:
            if not isinstance(t, KerasTensor):
                raise TypeError(
                    f"{who}: {kind} must be symbolic tensors (from keras.Input and layer calls), "
                    f"got {type(t).__name__}."
                )
    for t in inputs:
        if t.node is None or t.node.inputs:
            raise ValueError(
                f"{who}: every input must come straight from keras.Input(...); {t!r} was made "
                "by a layer."
            )
    given = {id(t) for t in inputs}
    order: list[Node] = []
    done: set[int] = set()
    active: set[int] = set()
    used: set[int] = set()

    def enter(tensor, stack):
        """The node to visit next for ``tensor`` (None: an input, or a node done already)."""
        if id(tensor) in given:
            used.add(id(tensor))
            return None
        node = tensor.node
        if node is None or not node.inputs:
            made = "" if node is None else f" ({node.layer.label})"
            path = " <- ".join(frame[0].layer.name for frame in stack) or "an output"
            raise ValueError(
                f"{who}: graph disconnected: the outputs need {tensor!r}{made}, which is not "
                f"among the model's inputs (reached via {path}). "
                "Pass every keras.Input the outputs use in Model(inputs=...), and do not mix "
                "tensors of another model's graph."
            )
        if id(node) in done:
            return None
        if id(node) in active:
            raise ValueError(f"{who}: the graph has a cycle through {node.layer.label}.")
        active.add(id(node))
        return node

    # depth-first with an explicit stack of [node, next input]: deep graphs need no recursion
    for t in outputs:
        stack: list[list] = []
        node = enter(t, stack)
        if node is not None:
            stack.append([node, 0])
        while stack:
            frame = stack[-1]
            node, i = frame
            if i < len(node.inputs):
                frame[1] += 1
                child = enter(node.inputs[i], stack)
                if child is not None:
                    stack.append([child, 0])
                continue
            stack.pop()
            active.discard(id(node))
            done.add(id(node))
            order.append(node)
    unused = [t for t in inputs if id(t) not in used]
    if unused:
        names = ", ".join(f"'{t.name}' {fmt_shape(t.shape)}" for t in unused)
        raise ValueError(
            f"{who}: input {names} is not used by any output; remove it from inputs or connect it."
        )
    return order


def layer_output(layer, call: int = -1):
    """The symbolic output of a layer's ``call``-th call on tensors (default: the last one).

    ``layer.output`` is the same for a layer called once; a shared layer has one per call.
    """
    nodes = layer.__dict__.get("_inbound_nodes") or []
    if not nodes:
        raise ValueError(f"{layer.label} has not been called on symbolic tensors (keras.Input).")
    node = nodes[call]
    return node.outputs if node.outputs_as_list else node.outputs[0]


def layer_calls(layer) -> list[Node]:
    """The nodes recording each call of ``layer`` on symbolic tensors, oldest first."""
    return list(layer.__dict__.get("_inbound_nodes") or [])


def drop_batch(shape) -> tuple:
    """(None, 28, 28, 1) or (28, 28, 1) -> (28, 28, 1)."""
    shape = tuple(shape)
    return shape[1:] if shape and shape[0] is None else shape


def shapes_text(shapes) -> str:
    """One example shape, or a list of them, as (None, ...) text for messages."""
    if isinstance(shapes, list):
        return "[" + ", ".join(fmt_shape((None, *s)) for s in shapes) + "]"
    return fmt_shape((None, *shapes))


def structure(value, who, what):
    """(tensors, keys or None, 'single' | 'list' | 'dict') for Model's inputs / outputs."""
    if isinstance(value, dict):
        if not value:
            raise ValueError(f"{who}: {what} is an empty dict.")
        return list(value.values()), [str(k) for k in value], "dict"
    if isinstance(value, list | tuple):
        if not value:
            raise ValueError(f"{who}: {what} is an empty list.")
        return list(value), None, "list"
    return [value], None, "single"


def output_names(outputs) -> list[str]:
    """Keras names outputs after the layers that make them."""
    names = []
    for t in outputs:
        layer = t.node.layer
        names.append(t.name if not t.node.inputs else layer.name)  # an Input: its name
    return names
