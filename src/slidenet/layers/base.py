"""The Layer contract: parameters under Keras names, a forward that calls ops, a hand-written
backward.

A layer is built once it knows the shape of one example (``build(input_shape)``, batch axis
excluded); that is where it checks that it fits its input and creates its weights. Calling it runs
the
forward pass and keeps what the backward pass needs; ``backward(dy)`` returns dx and leaves the
parameter gradients in ``layer.grads``, aligned with ``layer.weights``.
"""

from __future__ import annotations

import functools

import numpy as np

from slidenet import activations as _activations
from slidenet import initializers
from slidenet._validation import fmt_shape
from slidenet.layers.composite import CompositeMixin
from slidenet.layers.naming import _snake, batch_array, example_shape, unique_name  # noqa: F401
from slidenet.layers.penalties import SUFFIXES, PenaltyMixin
from slidenet.ops.activations import BACKWARD, FORWARD

_MISSING = object()
# attributes that describe the layer, not one call of it (never restored by backward_with_cache)
_NOT_STATE = frozenset(
    {"grads", "built", "_in", "_out", "weight_names", "_own_weights", "_inbound_nodes"}
)


def _recording_forward(forward):
    @functools.wraps(forward)
    def wrapper(self, x, *args, **kwargs):
        self._batch = x.shape[0]
        return forward(self, x, *args, **kwargs)

    return wrapper


def _checked_backward(backward):
    @functools.wraps(backward)
    def wrapper(self, dy, *args, **kwargs):
        if getattr(self, "_batch", None) is None:
            raise RuntimeError(
                f"{self.label}: backward() needs a forward pass first; call the layer on a batch."
            )
        dy = np.asarray(dy)
        want = (self._batch, *self._out)
        if dy.dtype.kind not in "biuf" or dy.shape != want:
            raise ValueError(
                f"{self.label}: dy must be shaped like the last output {fmt_shape(want)} with real "
                f"numbers, got {fmt_shape(dy.shape)} of dtype {dy.dtype}."
            )
        if self._batch == 0:  # an empty batch: nothing flowed forward, nothing flows back
            mask = self.trained_mask() if self.trainable else [True] * len(self.weight_names)
            self.grads = [
                np.zeros_like(w) if t else None for t, w in zip(mask, self.weights, strict=True)
            ]
            return np.zeros((0, *self._in), dy.dtype)
        return backward(self, dy, *args, **kwargs)

    return wrapper


def _named_init(init):
    """Constructor errors name the layer class: "Dense: Unknown activation 'nope'. ..." (an
    argument handed on to activations, initializers or the random generator would not)."""

    @functools.wraps(init)
    def wrapper(self, *args, **kwargs):
        try:
            init(self, *args, **kwargs)
        except (ValueError, TypeError) as e:
            cls = type(self).__name__
            if cls in str(e) or type(e) not in (ValueError, TypeError):
                raise
            raise type(e)(f"{cls}: {e}") from None

    return wrapper


def _completed_build(build):
    """A Keras-style build() that only creates weights (add_weight) leaves the output shape
    unknown: the base build then finds it, so every built layer knows its shapes."""

    @functools.wraps(build)
    def wrapper(self, input_shape, *args, **kwargs):
        result = build(self, input_shape, *args, **kwargs)
        if self._out is None:
            Layer.build(self, input_shape)
        return result

    return wrapper


class Layer(CompositeMixin, PenaltyMixin):
    """Base class of all layers.

    Attributes:
        name: unique name used in messages, summaries and model files.
        weights: the live parameter arrays, in the order of ``weight_names``.
        grads: gradients from the last ``backward``, aligned with ``weights``.
        input_shape / output_shape: (None, ...) once built, the batch axis as None (Keras).
    """

    weight_names: tuple[str, ...] = ()
    #: weights kept in model files but never trained (as BatchNormalization's ``moving_*``)
    untrained_weights: tuple[str, ...] = ()
    #: attributes holding buffers reused from step to step (see forward_with_cache)
    step_buffers: tuple[str, ...] = ()

    def __init_subclass__(cls, **kwargs):
        """Every subclass's forward records the batch size and its backward checks dy against it
        (a wrong dy gets a message naming the layer, not a NumPy broadcasting error)."""
        super().__init_subclass__(**kwargs)
        if "forward" in cls.__dict__:
            cls.forward = _recording_forward(cls.__dict__["forward"])
        if "backward" in cls.__dict__:
            cls.backward = _checked_backward(cls.__dict__["backward"])
        if "build" in cls.__dict__:
            cls.build = _completed_build(cls.__dict__["build"])
        if "__init__" in cls.__dict__:
            cls.__init__ = _named_init(cls.__dict__["__init__"])

    def __init__(self, name=None, input_shape=None, dtype="float32", trainable=True, **kwargs):
        if "input_dim" in kwargs:
            input_shape = (kwargs.pop("input_dim"),)
        kwargs.pop("batch_input_shape", None)
        penalties = {k: kwargs.pop(k) for k in list(kwargs) if k.endswith(SUFFIXES)}
        if kwargs:
            bad = ", ".join(sorted(kwargs))
            raise TypeError(f"{type(self).__name__}: unexpected keyword argument(s): {bad}.")
        self.name = name or unique_name(_snake(type(self).__name__))
        self._set_penalties(penalties)
        self.input_shape_arg = None
        if input_shape is not None:
            self.input_shape_arg = example_shape(input_shape, f"{self.label}: input_shape")
        self.dtype = np.dtype(dtype)
        self.trainable = bool(trainable)
        self.built = False
        self.grads: list[np.ndarray] = []
        self._in: tuple[int, ...] | None = None
        self._out: tuple[int, ...] | None = None
        self._own_weights: list[str] = []  # created by add_weight

    # ----- shapes and building -------------------------------------------------------------
    @property
    def label(self) -> str:
        """How messages name this layer: Conv2D 'conv2d_1'."""
        return f"{type(self).__name__} '{self.name}'"

    @property
    def input_shape(self):
        return None if self._in is None else (None, *self._in)

    @property
    def output_shape(self):
        return None if self._out is None else (None, *self._out)

    @property
    def output(self):
        """The symbolic tensor this layer made when called on keras.Input tensors (Keras' name:
        ``Model(model.inputs, [layer.output for layer in model.layers])`` extracts features)."""
        return self._only_call("output")

    @property
    def input(self):
        """The symbolic tensor(s) this layer was called on (see ``output``)."""
        return self._only_call("input")

    def _only_call(self, what):
        nodes = self.__dict__.get("_inbound_nodes") or []
        if len(nodes) != 1:
            raise AttributeError(
                f"{self.label} was called {len(nodes)} times on symbolic tensors, so its {what} "
                "is ambiguous"
                + (
                    " (a shared layer has one per call; use "
                    "slidenet.models.graph.layer_output(layer, call))"
                    if nodes
                    else ""
                )
                + "."
            )
        node = nodes[0]
        if what == "input":
            return (
                node.inputs
                if node.as_list
                else (node.inputs[0] if node.inputs else node.outputs[0])
            )
        return node.outputs if node.outputs_as_list else node.outputs[0]

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        """Shape of one output example for one input example (no batch axis)."""
        return tuple(input_shape)

    def build(self, input_shape) -> None:
        """Check the layer fits ``input_shape`` (one example), create weights, set output shape."""
        input_shape = example_shape(input_shape, f"{self.label}: input shape")
        if self._is_composite():  # built from other layers: run it once to build them
            self._in, self.built = input_shape, True
            self._out = self._dry_run_shape(input_shape)
            self._name_composite_weights()
            return
        self._out = tuple(self.compute_output_shape(input_shape))
        self._in = input_shape
        self.built = True

    def _expect_rank(self, input_shape, rank: int, layout: str, hint: str = "") -> None:
        if len(input_shape) != rank:
            raise ValueError(
                f"{self.label} expects each example shaped {layout}, got {fmt_shape(input_shape)}."
                + (f" {hint}" if hint else "")
            )

    # ----- running -------------------------------------------------------------------------
    def __call__(self, x, training=False):
        """Run the layer on a batch (N, ...); on symbolic tensors (keras.Input), add it to a graph.

        Inside a composite layer's or a subclassed model's ``call``, the call is also recorded so
        that the backward pass can be replayed (see slidenet.models.tape).
        """
        from slidenet.models import graph, tape

        if graph.is_symbolic(x):
            return graph.symbolic_call(self, x)
        recorder = tape.active_tape()
        if recorder is None:
            return self._eager_call(x, training)
        y, state = self.forward_with_cache(x, training, fresh_buffers=recorder.seen(self))
        as_list = isinstance(x, list | tuple)
        recorder.entries.append(tape.Entry(self, list(x) if as_list else [x], as_list, y, state))
        return y

    def _eager_call(self, x, training):
        x = batch_array(x, self.label)
        if not self.built:
            self._ensure_built(x.shape[1:])
        elif tuple(x.shape[1:]) != self._in:
            raise ValueError(
                f"{self.label} was built for input {fmt_shape(self.input_shape)} "
                f"but got {fmt_shape(x.shape)}."
            )
        if x.dtype != self.dtype:
            x = x.astype(self.dtype)
        if x.shape[0] == 0:  # a batch of 0 examples gives 0 outputs, as in Keras
            self._batch = 0
            return np.zeros((0, *self._out), self.dtype)
        return self.forward(x, training)

    def forward_with_cache(self, x, training=False, fresh_buffers=False):
        """(y, state): run the layer and return, apart from the output, the per-call state its
        backward needs. A graph keeps one state per call, so a layer called several times (shared
        weights) is differentiated at each call with that call's own cache.

        ``fresh_buffers``: this is not the layer's first call in this pass, so the buffers it
        reuses from step to step (``step_buffers``, e.g. Conv2D's im2col columns) still hold an
        earlier call's cache: this call gets new ones.
        """
        kept = {k: self.__dict__.pop(k) for k in self.step_buffers if k in self.__dict__}
        if not fresh_buffers:
            self.__dict__.update(kept)
        before = dict(self.__dict__)
        self._fresh_call = fresh_buffers  # a composite passes it on to its own layer calls
        try:
            y = self._eager_call(x, training)
        finally:
            del self._fresh_call
        state = {
            k: v
            for k, v in self.__dict__.items()
            if before.get(k, _MISSING) is not v and k not in _NOT_STATE
        }
        if fresh_buffers:
            self.__dict__.update(kept)  # the first call's buffers stay the ones reused
        return y, state

    def backward_with_cache(self, dy, state, **kwargs):
        """Backward of the call that returned ``state`` from forward_with_cache."""
        self.__dict__.update(state)
        return self.backward(dy, **kwargs)

    def symbolic_output_shapes(self, input_shape):
        """Build the layer for ``input_shape`` (one example), or check it was built for it, and
        return the shape of one output example; called when the layer is applied to tensors."""
        if not self.built:
            self._ensure_built(input_shape)
        elif tuple(input_shape) != self._in:
            raise ValueError(
                f"{self.label} was built for input {fmt_shape(self.input_shape)} but is called on "
                f"a tensor of shape {fmt_shape((None, *input_shape))}. A layer called several "
                "times shares its weights, so every call needs the same input shape."
            )
        return self._out

    def _ensure_built(self, input_shape) -> None:
        self.build(input_shape)

    def forward(self, x, training=False):
        """Forward pass of a batch; keeps what backward needs.

        Layers with new math override it (and ``backward``). A layer that defines ``call`` instead
        (Keras' way) runs ``call`` here with its layer calls recorded, so that ``backward``
        can replay them.
        """
        if not self._is_composite():
            raise NotImplementedError(
                f"{self.label}: a Layer subclass defines call(self, inputs) (built from other "
                "layers) or forward(self, x, training) and backward(self, dy) (new math)."
            )
        return self._recorded_forward(x, training)

    def backward(self, dy):
        """Backward pass: dy (like the output) -> dx (like the input); fills ``self.grads``.

        For a layer that defines ``call``, the recorded layer calls are replayed in reverse.
        """
        return self._replayed_backward(dy)

    # ----- weights -------------------------------------------------------------------------
    @property
    def weights(self) -> list[np.ndarray]:
        if not self.built:
            return []
        if self._is_composite():
            own = [getattr(self, n) for n in self._own_weights]
            return own + [w for layer in self._sublayers() for w in layer.weights]
        return [getattr(self, n) for n in self.weight_names]

    def _named(self):
        return list(zip(self.weight_names, self.weights, strict=True))

    def get_weights(self) -> list[np.ndarray]:
        """Copies of the parameters, in ``weight_names`` order."""
        return [w.copy() for w in self.weights]

    def set_weights(self, weights) -> None:
        """Replace the parameters (same count and shapes as get_weights); cast to the layer
        dtype.
        """
        weights = self._checked_weights(weights)
        if self._is_composite():
            n = len(self._own_weights)
            for name, new in zip(self._own_weights, weights[:n], strict=True):
                setattr(self, name, np.array(new, dtype=self.dtype))
            for layer in self._sublayers():
                layer.set_weights(weights[n : n + len(layer.weights)])
                n += len(layer.weights)
            return
        for name, new in zip(self.weight_names, weights, strict=True):
            setattr(self, name, np.array(new, dtype=self.dtype))

    def _checked_weights(self, weights) -> list[np.ndarray]:
        """``weights`` as arrays, checked against this built layer's count, shapes and kinds."""
        if not self.built:
            raise ValueError(
                f"{self.label} is not built yet; add it to a model with an input shape."
            )
        weights = [np.asarray(w) for w in weights]
        if len(weights) != len(self.weight_names):
            raise ValueError(
                f"{self.label} has {len(self.weight_names)} weight arrays "
                f"({', '.join(self.weight_names) or 'none'}), got {len(weights)}."
            )
        for name, old, new in zip(self.weight_names, self.weights, weights, strict=True):
            if new.shape != old.shape:
                raise ValueError(
                    f"{self.label}: {name} has shape {fmt_shape(old.shape)}, "
                    f"got {fmt_shape(new.shape)}."
                )
            if new.dtype.kind not in "fiu":
                raise TypeError(f"{self.label}: {name} must be numeric, got dtype {new.dtype}.")
        return weights

    def count_params(self) -> int:
        return int(sum(w.size for w in self.weights))

    # ----- config --------------------------------------------------------------------------
    def get_config(self) -> dict:
        """Constructor arguments that rebuild this layer (JSON-serialisable)."""
        config = {"name": self.name, "dtype": self.dtype.name, "trainable": self.trainable}
        if self.input_shape_arg is not None:
            config["input_shape"] = list(self.input_shape_arg)
        from slidenet import constraints, regularizers

        for prefix, reg in self.regularizers.items():
            config[f"{prefix}_regularizer"] = regularizers.serialize(reg)
        for prefix, con in self.constraints.items():
            config[f"{prefix}_constraint"] = constraints.serialize(con)
        return config

    @classmethod
    def from_config(cls, config: dict):
        config = dict(config)
        for key in ("kernel_initializer", "bias_initializer"):
            if key in config:
                config[key] = initializers.deserialize(config[key])
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{self.label} output_shape={self.output_shape}>"


class ActivationMixin:
    """Adds ``activation=`` to a layer: y = act(core(x)); backward goes through act first.

    For softmax and sigmoid the pre-activation ``logits`` are kept so the model can use the fused,
    numerically stable cross-entropy and enter the backward pass below the activation.
    """

    def _set_activation(self, activation):
        self.activation = _activations.get(activation)

    def _activate(self, z):
        y, self._act_cache = FORWARD[self.activation](z)
        self.logits = z if self.activation in ("softmax", "sigmoid") else None
        return y

    def _deactivate(self, dy, from_logits=False):
        return dy if from_logits else BACKWARD[self.activation](dy, self._act_cache)
