"""Model: a graph of layers (Keras' functional API) or a subclass with its own ``call``.

Functional::

    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Conv2D(8, 3, activation="relu")(inputs)
    outputs = keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(x))
    model = keras.Model(inputs, outputs)

Forward runs the nodes in topological order; backward runs them in reverse, summing the gradients
of a tensor that feeds several layers, and summing the weight gradients of a layer called several
times (shared weights). Each call keeps its own cache (``Layer.forward_with_cache``), so a shared
layer is differentiated at every call with that call's inputs. A Model is itself a layer: it can be
called on tensors inside another model.

Subclassed: ``class Net(keras.Model)`` creates layers in ``__init__`` and uses them in ``call(self,
inputs, training=False)``; the layer calls are recorded while ``call`` runs and replayed backwards
(slidenet.models.tape), so no backward pass is written by hand.
"""

from __future__ import annotations

import numpy as np

from slidenet._validation import fmt_shape
from slidenet.layers.base import Layer
from slidenet.models import graph, tape
from slidenet.models.multi_io import MultiIOTraining


class _ModelBackward:
    """Model.backward, kept outside the Layer hierarchy: Layer.__init_subclass__ wraps a
    ``backward`` written in a Layer subclass with a check of dy against ``self._batch``, which
    for a model is the training loop's batch-slicing method, not a batch size."""

    def backward(self, dy):
        """Backward of the last call made outside fit (``model(x)`` then ``model.backward(dy)``):
        d(outputs) -> d(inputs) (a list for several inputs); every layer's ``grads`` set."""
        state = getattr(self, "_last_state", None)
        if state is None:
            raise RuntimeError(f"{self.label}: backward() needs a call on arrays first.")
        outs = state["outs"]
        douts = list(dy) if isinstance(dy, list | tuple) else [dy]
        if len(douts) != len(outs) or any(
            np.shape(d) != np.shape(o) for d, o in zip(douts, outs, strict=False)
        ):
            raise ValueError(
                f"{self.label}: dy must be shaped like the last outputs "
                f"{[fmt_shape(np.shape(o)) for o in outs]}, got "
                f"{[fmt_shape(np.shape(d)) for d in douts]}."
            )
        return self.backward_with_cache(dy, state)


class Model(MultiIOTraining, _ModelBackward, Layer):
    """A model from input tensors to output tensors, or a subclass that defines ``call``.

    Args:
        inputs: a KerasTensor from ``keras.Input``, or a list or dict of them.
        outputs: tensors computed from ``inputs`` by layer calls: one, a list or a dict.
        name: the model's name (default 'model', 'model_1', ...; for a subclass its snake-case
            class name).

    Shapes are channels-last; ``model.input_shape`` / ``output_shape`` have None for the batch
    axis (a list of shapes for several inputs or outputs).
    """

    def __init__(self, inputs=None, outputs=None, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        self._dtype_given = "dtype" in kwargs  # else a subclass takes its outputs' dtype
        self._init_training()
        self._functional = inputs is not None or outputs is not None
        if self._functional:
            self._init_graph(inputs, outputs)

    # ----- building the graph ----------------------------------------------------------------
    def _init_graph(self, inputs, outputs):
        who = f"Model '{self.name}'"
        if inputs is None or outputs is None:
            raise ValueError(f"{who}: give both inputs and outputs, e.g. Model(inputs, outputs).")
        self._inputs, self._input_names, self._input_struct = graph.structure(inputs, who, "inputs")
        self._outputs, keys, self._output_struct = graph.structure(outputs, who, "outputs")
        self._nodes = graph.trace(self._inputs, self._outputs, who)
        self._input_names = self._input_names or [t.name for t in self._inputs]
        self.output_names = keys or graph.output_names(self._outputs)
        if len(set(self.output_names)) < len(self.output_names):
            self.output_names = [f"{n}_{i}" for i, n in enumerate(self.output_names)]
        seen, self.layers = set(), []
        for layer in [t.node.layer for t in self._inputs] + [n.layer for n in self._nodes]:
            if id(layer) not in seen:
                seen.add(id(layer))
                self.layers.append(layer)
        names = [layer.name for layer in self.layers]
        dup = next((n for n in names if names.count(n) > 1), None)
        if dup is not None:
            raise ValueError(
                f"{who}: two different layers are named '{dup}'; names must be unique."
            )
        consumers = {}
        for node in self._nodes:
            for t in node.inputs:
                consumers[id(t)] = consumers.get(id(t), 0) + 1
        self._consumers = consumers
        shapes = [t.example_shape for t in self._inputs]
        self._in = shapes[0] if self._input_struct == "single" else shapes
        outs = [t.example_shape for t in self._outputs]
        self._out = outs[0] if self._output_struct == "single" else outs
        self.dtype = self._outputs[0].dtype
        self.built = True

    @property
    def inputs(self) -> list:
        return list(self._inputs) if self._functional else []

    @property
    def outputs(self) -> list:
        return list(self._outputs) if self._functional else []

    @property
    def input_shape(self):
        if self._in is None:
            return None
        if isinstance(self._in, list):
            return [(None, *s) for s in self._in]
        return (None, *self._in)

    @property
    def output_shape(self):
        if self._out is None:
            return None
        if isinstance(self._out, list):
            return [(None, *s) for s in self._out]
        return (None, *self._out)

    @property
    def _input_shape(self):  # what TrainingMixin and the tools built for Sequential read
        return self._in

    def _output_shapes(self) -> list[tuple]:
        return self._out if isinstance(self._out, list) else [self._out]

    def _n_inputs(self) -> int:
        if self._functional:
            return len(self._inputs)
        return len(self._in) if isinstance(self._in, list) else 1

    def get_layer(self, name=None, index=None):
        """The layer called ``name`` (or at position ``index`` of ``model.layers``)."""
        if index is not None:
            if not -len(self.layers) <= index < len(self.layers):
                raise ValueError(
                    f"Model '{self.name}': get_layer(index={index}) but the model has "
                    f"{len(self.layers)} layers."
                )
            return self.layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        known = ", ".join(layer.name for layer in self.layers)
        raise ValueError(f"Model '{self.name}' has no layer named {name!r}; it has: {known}.")

    # ----- subclassed models: layers are the tracked attributes --------------------------------
    def __getattr__(self, name):
        if name == "layers":  # a subclass: the layers it holds in attributes
            if self.__dict__.get("_functional", True):
                raise AttributeError(name)
            return self._sublayers()
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def build(self, input_shape=None) -> None:
        """Build a subclassed model for inputs of ``input_shape`` (one example, or (None, ...));
        a functional model is built already."""
        if self._functional:
            return
        if input_shape is None:
            if self._in is None:
                raise ValueError(
                    f"Model '{self.name}' has no input shape yet; call it on data or "
                    "model.build((None, H, W, C))."
                )
            return
        multi = isinstance(input_shape, list) and not isinstance(input_shape[0], int | None)
        shapes = (
            [graph.drop_batch(s) for s in input_shape] if multi else [graph.drop_batch(input_shape)]
        )
        self._in = shapes if multi else shapes[0]
        self._input_struct = "list" if multi else "single"
        self.built = True  # before the dry run: the layers inside build themselves on it
        zeros = [np.zeros((1, *s), self.dtype) for s in shapes]
        with tape.recording(None):
            y = self._run_call(zeros if multi else zeros[0], False)
        several = isinstance(y, list | tuple | dict)
        outs = tape.as_outputs(y)
        if not self._dtype_given:  # float64 layers: inputs are not rounded to float32 first
            self.dtype = np.asarray(outs[0]).dtype
        self._output_struct = "dict" if isinstance(y, dict) else "list" if several else "single"
        self._out = [tuple(o.shape[1:]) for o in outs] if several else tuple(y.shape[1:])
        self.output_names = [f"output_{i + 1}" for i in range(len(outs))] if several else ["output"]
        if isinstance(y, dict):  # call() returned {name: output}: Keras names them so
            self.output_names = [str(k) for k in y]

    # ----- running -----------------------------------------------------------------------------
    def call(self, inputs, training=False):
        """The forward computation; a functional model runs its graph, a subclass overrides it."""
        xs = inputs if isinstance(inputs, list | tuple) else [inputs]
        outs, _ = self._run_graph(list(xs), training)
        return outs if self._output_struct != "single" else outs[0]

    def _run_graph(self, xs, training, fresh_buffers=False):
        """Forward through the nodes: (outputs, per-node states). A layer's second call (shared
        weights) gets fresh step buffers, so the first call's cache stays intact."""
        values = {id(t): x for t, x in zip(self._inputs, xs, strict=True)}
        states = []
        called: set[int] = set()
        for node in self._nodes:
            args = [values[id(t)] for t in node.inputs]
            fresh = fresh_buffers or id(node.layer) in called
            called.add(id(node.layer))
            y, state = node.layer.forward_with_cache(
                args if node.as_list else args[0], training, fresh_buffers=fresh
            )
            states.append(state)
            for t, v in zip(node.outputs, y if node.outputs_as_list else [y], strict=True):
                values[id(t)] = v
        return [values[id(t)] for t in self._outputs], states

    def _backward_graph(self, douts, states, from_logits=(), need_dx=True):
        """Backward through the nodes in reverse: d(outputs) -> d(inputs); layers' grads set.

        ``from_logits``: output indices whose gradient is w.r.t. the producing layer's logits.
        """
        counts = {}
        for node in self._nodes:
            counts[id(node.layer)] = counts.get(id(node.layer), 0) + 1
        fused = {id(self._outputs[i].node) for i in from_logits}
        grads = {}
        for t, d in zip(self._outputs, douts, strict=True):
            tape.add_grad(grads, id(t), d)
        acc = tape.GradAccumulator(counts)
        input_ids = {id(t) for t in self._inputs}
        for node, state in zip(reversed(self._nodes), reversed(states), strict=True):
            dys = [grads.pop(id(t), None) for t in node.outputs]
            if all(d is None for d in dys):
                continue
            dys = [
                np.zeros((state_batch(state, douts), *t.example_shape), self.dtype)
                if d is None
                else d
                for t, d in zip(node.outputs, dys, strict=True)
            ]
            kwargs = {"from_logits": True} if id(node) in fused else {}
            if not need_dx and _first_conv(node, input_ids):
                kwargs["need_dx"] = False
            dy = dys if node.outputs_as_list else dys[0]
            dx = node.layer.backward_with_cache(dy, state, **kwargs)
            acc.add(node.layer)
            for t, g in zip(node.inputs, dx if node.as_list else [dx], strict=True):
                tape.add_grad(grads, id(t), g)
        acc.finish()
        return [grads.get(id(t)) for t in self._inputs]

    def forward_with_cache(self, x, training=False, fresh_buffers=False):
        """(outputs, state) for one call of this model inside another model (``fresh_buffers``:
        see Layer.forward_with_cache)."""
        xs = self._eager_inputs(x, f"Model '{self.name}'")
        if self._functional:
            outs, states = self._run_graph(xs, training, fresh_buffers)
            state = {"states": states, "xs": xs, "outs": outs}
        else:
            with tape.recording(tape.Tape(fresh=fresh_buffers)) as recorded:
                y = self._run_call(xs if self._input_struct == "list" else xs[0], training)
            outs = tape.as_outputs(y)
            state = {"tape": recorded, "xs": xs, "outs": outs}
        return (outs if self._output_struct != "single" else outs[0]), state

    def backward_with_cache(self, dy, state, from_logits=False, need_dx=True):
        """d(outputs) -> d(inputs) for the call that returned ``state``; ``grads`` set."""
        douts = list(dy) if isinstance(dy, list | tuple) else [dy]
        if self._functional:
            fused = range(len(douts)) if from_logits else ()
            dxs = self._backward_graph(douts, state["states"], fused, need_dx)
        else:
            for layer in self._sublayers():
                layer.grads = [None] * len(layer.weights)
            dxs = tape.replay(state["tape"], state["xs"], state["outs"], douts, self.label)
        self.grads = [g for layer in self.layers for g in layer.grads]
        dxs = [np.zeros_like(x) if d is None else d for x, d in zip(state["xs"], dxs, strict=True)]
        return dxs if self._input_struct == "list" or len(dxs) > 1 else dxs[0]

    def _eager_call(self, x, training):
        y, self._last_state = self.forward_with_cache(x, training)
        return y

    def _eager_inputs(self, x, who) -> list:
        """The model's input arrays as a list, checked (count, names, shapes) and cast."""
        if not self._functional and not self.built:
            xs = x if isinstance(x, list | tuple) else [x]
            shapes = [np.shape(v)[1:] for v in xs]
            self.build(shapes if isinstance(x, list | tuple) else shapes[0])
        return self._split_inputs(x, who, cast=True)

    def symbolic_output_shapes(self, input_shape):
        if not self._functional and not self.built:
            self.build(input_shape)
        want = self._in
        if (list(input_shape) if isinstance(want, list) else tuple(input_shape)) != want:
            raise ValueError(
                f"Model '{self.name}' expects inputs shaped {self.input_shape} but is called on "
                f"tensors shaped {graph.shapes_text(input_shape)}."
            )
        return list(self._out) if isinstance(self._out, list) else self._out

    # ----- weights -----------------------------------------------------------------------------
    @property
    def weights(self) -> list[np.ndarray]:
        return [w for layer in self.layers for w in layer.weights]

    @property
    def weight_names(self):
        return tuple(f"{layer.name}/{n}" for layer in self.layers for n in layer.weight_names)

    @weight_names.setter
    def weight_names(self, value):  # Layer.__init__ and composites assign it; derived here
        pass

    def get_weights(self) -> list[np.ndarray]:
        return [w.copy() for w in self.weights]

    def set_weights(self, weights) -> None:
        weights = list(weights)
        expected = len(self.weights)
        if len(weights) != expected:
            raise ValueError(
                f"Model '{self.name}' has {expected} weight arrays, got {len(weights)}."
            )
        i = 0
        for layer in self.layers:
            n = len(layer.weights)
            layer.set_weights(weights[i : i + n])
            i += n

    def count_params(self) -> int:
        if not self.built:
            raise ValueError(f"Model '{self.name}' is not built; call it on data first.")
        return sum(layer.count_params() for layer in self.layers)

    def summary(self, print_fn=None, line_length=None) -> None:
        """Keras' table with the "Connected to" column, plus the conv / pool arithmetic."""
        from slidenet.models.graph_summary import graph_summary_text

        (print_fn or print)(graph_summary_text(self, line_length))

    def save(self, filepath) -> None:
        """Write the model (functional: architecture and weights; see slidenet.models.saving)."""
        from slidenet.models.saving import save_model

        save_model(self, filepath)

    def to_fully_convolutional(self, input_shape=None):
        """This classifier with its dense head as convolutions, built for a canvas of
        ``input_shape`` (H, W, C); see slidenet.models.fully_convolutional."""
        from slidenet.models.fully_convolutional import to_fully_convolutional

        return to_fully_convolutional(self, input_shape)

    def export_onnx(self, path, opset=17) -> None:
        """Write the model as ONNX (NHWC inputs and outputs); see slidenet.interop.export_onnx."""
        from slidenet.interop.onnx_export import export_onnx

        export_onnx(self, path, opset=opset)

    # ----- config ------------------------------------------------------------------------------
    def get_config(self) -> dict:
        """The graph as JSON: each layer's config and, per node, the tensors it was called on."""
        if not self._functional:
            raise NotImplementedError(
                f"Model '{self.name}' is a subclass without get_config(); save its weights with "
                "save_weights(path) and rebuild it in code, or define get_config/from_config."
            )
        from slidenet.models.graph_config import graph_config

        return graph_config(self)

    @classmethod
    def from_config(cls, config: dict):
        from slidenet.models.graph_config import model_from_config

        return model_from_config(config)

    @property
    def label(self) -> str:
        return f"Model '{self.name}'" if type(self) is Model else super().label


def state_batch(state, douts) -> int:
    return len(douts[0]) if douts and douts[0] is not None else 0


def _first_conv(node, input_ids) -> bool:
    """A Conv2D straight after the model's inputs: its input gradient is not needed in fit."""
    from slidenet.layers.convolutional import Conv2D

    return isinstance(node.layer, Conv2D) and all(id(t) in input_ids for t in node.inputs)
