"""The model side of explore: the columns of the page, and one forward pass that keeps them all.

A *column* is one layer's output for one example. For a :class:`slidenet.Sequential` the columns
are the input, then each layer in order; for a graph :class:`slidenet.Model` they are
``model.layers`` (its ``InputLayer`` first) in topological order, each reading the columns that
made its inputs. The pass runs the layers one by one in inference mode (``layer(x)``), so every
column is exactly that layer's own output: ``model.predict`` may apply a convolution's ReLU after
the following max pool (equivalent, faster), which would hide the conv layer's own map.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

from slidenet.layers import AveragePooling2D, Conv2D, Dense, MaxPooling2D, SumPooling2D
from slidenet.layers.core import InputLayer
from slidenet.utils.blas import blas_threads

__all__ = ["Column", "Network"]

_POOLS = (MaxPooling2D, AveragePooling2D, SumPooling2D)


def _kind(layer, shape) -> str:
    """How the page shows a column and which unit panel it has."""
    if layer is None or isinstance(layer, InputLayer):
        return "input"
    if isinstance(layer, Conv2D) and layer.rank == 2:
        return "conv"
    if isinstance(layer, _POOLS):
        return "pool"
    if isinstance(layer, Dense) and len(layer.input_shape) == 2:
        return "dense"
    return "maps" if len(shape) == 3 else "vector"


@dataclass
class Column:
    """One column of the page: a layer's output for one example.

    Attributes:
        name: the layer's name ("input" for a Sequential's input). layer: the Layer (None for a
            Sequential's input). kind: "input", "conv", "pool", "dense", "maps" (other (H, W, C)
            outputs) or "vector" (other 1D outputs). shape: one example's shape, e.g. (28, 28, 32).
        inputs: indices of the columns this one reads (empty for the input).
    """

    name: str
    layer: object
    kind: str
    shape: tuple
    inputs: list[int] = field(default_factory=list)

    def describe(self) -> dict:
        layer = self.layer
        info = {
            "name": self.name,
            "class": "Input" if layer is None else type(layer).__name__,
            "kind": self.kind,
            "shape": list(self.shape),
            "activation": getattr(layer, "activation", None),
        }
        if self.kind in ("conv", "pool"):
            info["window"] = list(layer.kernel_size if self.kind == "conv" else layer.pool_size)
            info["strides"] = list(layer.strides)
        if self.kind == "dense":
            info["units"] = int(layer.units)
        return info


class Network:
    """The columns of a one-input image classifier and a thread-safe pass that computes them.

    Args:
        model: a built Sequential or functional Model with one input (H, W, C) and one output
            (classes,).

    Raises:
        ValueError: the model is not built, does not take images, or has several inputs/outputs.
    """

    def __init__(self, model):
        from slidenet.models.functional import Model

        self.model = model
        self._lock = threading.Lock()  # layers keep per-call caches: one pass at a time
        if not getattr(model, "built", False) or model.input_shape is None:
            raise ValueError(
                f"model '{model.name}' is not built; give it an input shape (Input((H, W, C)))."
            )
        self.graph = isinstance(model, Model)
        if self.graph:
            self._init_graph(model)
        else:
            self._init_sequential(model)
        shape = self.columns[0].shape
        if len(shape) != 3 or shape[-1] not in (1, 3):
            raise ValueError(
                f"slidenet explore shows image classifiers; model '{model.name}' takes inputs of "
                f"shape {tuple(model.input_shape)}, not (None, H, W, 1) or (None, H, W, 3)."
            )
        if len(self.columns[-1].shape) != 1:
            raise ValueError(
                f"slidenet explore needs class scores (None, classes) as the output; model "
                f"'{model.name}' outputs {tuple(model.output_shape)}."
            )
        self.index = {c.name: i for i, c in enumerate(self.columns)}

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.columns[0].shape)

    def _init_sequential(self, model):
        names = {layer.name for layer in model.layers}
        first = "input" if "input" not in names else "model_input"
        self.columns = [Column(first, None, "input", tuple(model.input_shape[1:]))]
        for i, layer in enumerate(model.layers):
            shape = tuple(layer.output_shape[1:])
            self.columns.append(Column(layer.name, layer, _kind(layer, shape), shape, [i]))

    def _init_graph(self, model):
        from slidenet.models.functional import Model
        from slidenet.models.graph import layer_calls, layer_output

        if not model.inputs:
            raise ValueError(
                f"model '{model.name}' is a subclassed Model; explore shows Sequential and "
                "functional models (keras.Model(inputs, outputs))."
            )
        if len(model.inputs) != 1 or len(model.outputs) != 1:
            raise ValueError(
                f"model '{model.name}' has {len(model.inputs)} inputs and {len(model.outputs)} "
                "outputs; explore needs one image input and one output of class scores."
            )
        self.columns, made_by, probe_outputs = [], {}, []
        for layer in model.layers:
            out = layer_output(layer) if not isinstance(layer, InputLayer) else model.inputs[0]
            out = out[0] if isinstance(out, list) else out
            made_by[id(out)] = len(self.columns)
            shape = tuple(out.shape[1:])
            self.columns.append(Column(layer.name, layer, _kind(layer, shape), shape))
            if not isinstance(layer, InputLayer):
                probe_outputs.append(out)
        for column in self.columns[1:]:
            node = layer_calls(column.layer)[-1]
            column.inputs = [made_by[id(t)] for t in node.inputs if id(t) in made_by]
            if len(column.inputs) < len(node.inputs):  # a shared layer's last call reads an
                column.kind = "maps" if len(column.shape) == 3 else "vector"  # earlier call
        self._probe = Model(model.inputs[0], probe_outputs, name=f"{model.name}_explore")

    def forward(self, x: np.ndarray) -> list[np.ndarray]:
        """Every column's output for one example ``x`` (H, W, C): a list aligned with
        ``columns``, each one example (no batch axis), owned by the caller."""
        batch = np.asarray(x, dtype=self.model.dtype)[None]
        quiet = np.errstate(over="ignore", invalid="ignore", divide="ignore")
        # one example: more BLAS threads would only spin and fight the server's for the cores
        with self._lock, blas_threads(1), quiet:
            if self.graph:
                outs = self._probe(batch, training=False)
                outs = outs if isinstance(outs, list) else [outs]
                values = [batch, *outs]
            else:
                values = [batch]
                for layer in self.model.layers:
                    values.append(layer(values[-1], training=False))
        return [np.array(v[0], copy=True) for v in values]
