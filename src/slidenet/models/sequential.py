"""Sequential: a stack of layers, trained by a plain loop over epochs and batches.

Forward: x -> layer_1 -> ... -> layer_n -> loss. Backward: the loss gradient goes through
``layer.backward`` in reverse order, then the optimizer updates every weight from ``layer.grads``.
"""

from __future__ import annotations

import numpy as np

from slidenet._validation import fmt_shape
from slidenet.layers.base import Layer, unique_name
from slidenet.layers.convolutional import Conv2D
from slidenet.layers.core import InputLayer
from slidenet.layers.pooling import _Pooling2D
from slidenet.models.graph import KerasTensor
from slidenet.models.training import TrainingMixin
from slidenet.ops.activations import relu_backward, relu_forward


class Sequential(TrainingMixin):
    """A linear stack of layers with Keras' model API.

    >>> import slidenet as keras
    >>> model = keras.Sequential([keras.layers.Input((28, 28, 1)),
    ...                           keras.layers.Conv2D(8, 5, padding="same", activation="relu"),
    ...                           keras.layers.MaxPooling2D(2), keras.layers.Flatten(),
    ...                           keras.layers.Dense(10, activation="softmax")])
    >>> model.output_shape
    (None, 10)
    """

    def __init__(self, layers=None, name=None):
        self.name = name or unique_name("sequential")
        self.layers: list[Layer] = []
        self._input_shape: tuple[int, ...] | None = None
        self.optimizer = None
        self.loss = None
        self.metric_fns: list[tuple[str, callable]] = []
        self._metric_names: list = []
        self.stop_training = False
        self.history = None
        self.epoch = 0  # epochs completed by fit, kept in model files
        self._rng = None  # shuffling; created at the first fit
        self._moved_relu = {}  # see _forward
        for layer in layers or []:
            self.add(layer)

    # ----- building ------------------------------------------------------------------------
    def add(self, layer) -> None:
        """Append a layer; with a known input shape it is built (and checked) at once."""
        if isinstance(layer, KerasTensor) and isinstance(
            getattr(layer.node, "layer", None), InputLayer
        ):
            layer = layer.node.layer  # Sequential([keras.Input(shape), ...])
        if not isinstance(layer, Layer):
            raise TypeError(
                f"Sequential.add: expected a slidenet layer, got {type(layer).__name__}; "
                "did you forget the parentheses, e.g. Flatten()?"
            )
        if isinstance(layer, InputLayer):
            if self.layers:
                raise ValueError("Sequential.add: Input(...) must come before every other layer.")
            self._input_shape = layer.shape
            return
        if any(existing.name == layer.name for existing in self.layers):
            raise ValueError(
                f"Sequential.add: a layer named '{layer.name}' is already in the model; "
                "layer names must be unique."
            )
        if not self.layers and self._input_shape is None and layer.input_shape_arg is not None:
            self._input_shape = layer.input_shape_arg
        shape = self._shape_after(self.layers)
        if shape is not None:
            self._build_layer(layer, shape)
        self.layers.append(layer)

    def _shape_after(self, layers):
        if self._input_shape is None:
            return None
        return layers[-1]._out if layers else self._input_shape

    @staticmethod
    def _build_layer(layer, shape):
        if not layer.built:
            layer.build(shape)
        elif layer._in != tuple(shape):
            raise ValueError(
                f"{layer.label} was built for input {fmt_shape(layer.input_shape)} but follows "
                f"an output of shape {fmt_shape((None, *shape))}."
            )

    def build(self, input_shape=None) -> None:
        """Build every layer for examples of ``input_shape`` (batch axis optional, as in Keras)."""
        if input_shape is not None:
            input_shape = tuple(input_shape)
            if input_shape and input_shape[0] is None:
                input_shape = input_shape[1:]
            self._input_shape = tuple(int(s) for s in input_shape)
        if self._input_shape is None:
            raise ValueError(
                f"Model '{self.name}' has no input shape; give the first layer input_shape=..."
            )
        for i, layer in enumerate(self.layers):
            self._build_layer(layer, self._shape_after(self.layers[:i]))

    @property
    def built(self) -> bool:
        return self._input_shape is not None and all(layer.built for layer in self.layers)

    @property
    def input_shape(self):
        return None if self._input_shape is None else (None, *self._input_shape)

    @property
    def output_shape(self):
        return self.layers[-1].output_shape if self.layers and self.built else None

    @property
    def dtype(self):
        return self.layers[0].dtype if self.layers else np.dtype("float32")

    # ----- weights ---------------------------------------------------------------------------
    @property
    def weights(self) -> list[np.ndarray]:
        return [w for layer in self.layers for w in layer.weights]

    def get_weights(self) -> list[np.ndarray]:
        """Copies of every layer's weights, layer by layer."""
        return [w for layer in self.layers for w in layer.get_weights()]

    def set_weights(self, weights) -> None:
        """Set every layer's weights from a list like :meth:`get_weights` returns."""
        weights = list(weights)
        expected = sum(len(layer.weights) for layer in self.layers)
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
            raise ValueError(f"Model '{self.name}' is not built; give it an input shape first.")
        return sum(layer.count_params() for layer in self.layers)

    def summary(self, print_fn=None, line_length=None) -> None:
        """Print Keras' table plus the output-size arithmetic of conv and pool layers."""
        from slidenet.models.summary import summary_text

        (print_fn or print)(summary_text(self, line_length))

    def to_fully_convolutional(self, input_shape=None):
        """This classifier with its Flatten + Dense head as convolutions, built for a canvas of
        ``input_shape`` (H, W, C): one pass gives the class scores of every window, (Ho, Wo, K).
        See :mod:`slidenet.models.fully_convolutional`."""
        from slidenet.models.fully_convolutional import to_fully_convolutional

        return to_fully_convolutional(self, input_shape)

    def save(self, filepath) -> None:
        """Write architecture, weights, compile settings, optimizer and RNG state to one file."""
        from slidenet.models.saving import save_model

        save_model(self, filepath)

    def export_onnx(self, path, opset=17) -> None:
        """Write the model as ONNX (NHWC input and output); see slidenet.interop.export_onnx."""
        from slidenet.interop.onnx_export import export_onnx

        export_onnx(self, path, opset=opset)

    # ----- one batch -------------------------------------------------------------------------
    def _relu_moves_past_pool(self, i) -> bool:
        """Is layer i a ReLU convolution followed by a max pool? Then the model pools first and
        applies the ReLU to the 4x smaller pooled output: max and ReLU commute
        (relu(max(z)) == max(relu(z))), so outputs and gradients are the same."""
        if i + 1 >= len(self.layers):
            return False
        conv, pool = self.layers[i], self.layers[i + 1]
        return (
            isinstance(conv, Conv2D)
            and conv.activation == "relu"
            and isinstance(pool, _Pooling2D)
            and pool.kind == "max"
        )

    def _forward(self, x, training):
        if len(x) == 0:  # 0 examples in, 0 out, as Keras
            return np.zeros((0, *self.layers[-1]._out), self.dtype)
        if not training:  # inference: overflow is reported once, below, naming the layer
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                y = self._forward_layers(x, training)
            if not np.isfinite(y).all():
                self._raise_non_finite(x)
            return y
        return self._forward_layers(x, training)

    def _raise_non_finite(self, x):
        """Finite inputs (checked on the way in) gave NaN or Inf: name the first layer to blame."""
        with np.errstate(all="ignore"):
            for layer in self.layers:
                x = layer(x)
                if not np.isfinite(x).all():
                    break
        raise FloatingPointError(
            f"Model '{self.name}': the output of {layer.label} holds NaN or Inf although the input "
            f"is finite: values overflowed {self.dtype}. Scale the inputs (e.g. x / 255) or check "
            "the weights."
        )

    def _forward_layers(self, x, training):
        self._moved_relu = {}  # index of a max pool -> mask of the ReLU applied after it
        moved = False
        for i, layer in enumerate(self.layers):
            if self._relu_moves_past_pool(i):
                x, moved = layer.forward(x, training, activate=False), True
            elif moved:
                x, self._moved_relu[i] = relu_forward(layer(x, training=training))
                moved = False
            else:
                x = layer(x, training=training)
        return x

    def _backward(self, grad, fused, need_dx=True):
        """Backpropagate from the loss to the input; returns d loss / d x.

        With need_dx=False (training) a first convolution skips its input gradient and None is
        returned.
        """
        for i in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[i]
            kwargs = {"from_logits": True} if fused and i == len(self.layers) - 1 else {}
            if i in self._moved_relu:
                grad = relu_backward(grad, self._moved_relu[i])
            if self._relu_moves_past_pool(i):
                kwargs["from_logits"] = True  # its ReLU was applied (and undone) after the pool
            if i == 0 and not need_dx and isinstance(layer, Conv2D):
                kwargs["need_dx"] = False
            grad = layer.backward(grad, **kwargs)
        return grad

    def __call__(self, x, training=False):
        """Outputs for x; on symbolic tensors, the model is one layer of a graph (nested)."""
        from slidenet.models import graph, tape

        if graph.is_symbolic(x):
            return graph.symbolic_call(self, x)
        recorder = tape.active_tape()
        if recorder is not None:  # inside a subclassed model's call: record as one layer
            y, state = self.forward_with_cache(x, training, recorder.seen(self))
            recorder.entries.append(tape.Entry(self, [x], False, y, state))
            return y
        return self._forward(self._prepare_x(x, "call", empty_ok=True), training=training)

    # ----- as a layer of another model ---------------------------------------------------------
    trainable = True

    @property
    def label(self) -> str:
        return f"Sequential '{self.name}'"

    @property
    def _in(self):
        return self._input_shape

    @property
    def _out(self):
        return self.layers[-1]._out if self.layers and self.built else None

    def symbolic_output_shapes(self, input_shape):
        """Build for ``input_shape`` (one example) or check it; the output example's shape."""
        if self._input_shape is None:
            self.build(input_shape)
        elif tuple(input_shape) != self._input_shape:
            raise ValueError(
                f"{self.label} expects inputs shaped {fmt_shape(self.input_shape)} but is called "
                f"on a tensor of shape {fmt_shape((None, *input_shape))}."
            )
        return self._out

    def forward_with_cache(self, x, training=False, fresh_buffers=False):
        """(y, state) for one call inside another model: each layer's own per-call state, so a
        Sequential called twice (a shared encoder) is differentiated at each call."""
        x = self._prepare_x(x, "call", empty_ok=True)
        states = []
        for layer in self.layers:
            x, state = layer.forward_with_cache(x, training, fresh_buffers)
            states.append(state)
        return x, states

    def backward_with_cache(self, dy, states, from_logits=False, need_dx=True):
        """d(output) -> d(input) for the call that returned ``states``; ``grads`` set."""
        for i in range(len(self.layers) - 1, -1, -1):
            kwargs = {"from_logits": True} if from_logits and i == len(self.layers) - 1 else {}
            dy = self.layers[i].backward_with_cache(dy, states[i], **kwargs)
        self.grads = [g for layer in self.layers for g in layer.grads]
        return dy

    @property
    def weight_names(self):
        return tuple(f"{layer.name}/{n}" for layer in self.layers for n in layer.weight_names)

    def _sublayers(self):
        return list(self.layers)

    def trained_mask(self) -> list[bool]:
        """Which of ``weights`` the optimizer updates (see Layer.trained_mask)."""
        return [t for layer in self.layers for t in layer.trained_mask()]

    @classmethod
    def from_config(cls, config: dict):
        """A Sequential from get_config's dict (layers rebuilt from their configs)."""
        from slidenet.layers import LAYER_CLASSES

        model = cls(name=config["name"])
        if config.get("input_shape") is not None:
            model._input_shape = tuple(int(s) for s in config["input_shape"])
        for spec in config["layers"]:
            if spec["class_name"] not in LAYER_CLASSES:
                raise ValueError(f"unknown layer type {spec['class_name']!r}")
            model.add(LAYER_CLASSES[spec["class_name"]].from_config(spec["config"]))
        return model

    def get_config(self) -> dict:
        return {
            "name": self.name,
            "input_shape": None if self._input_shape is None else list(self._input_shape),
            "layers": [
                {"class_name": type(layer).__name__, "config": layer.get_config()}
                for layer in self.layers
            ],
        }
