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
import inspect
import re
from collections import defaultdict

import numpy as np

from slidenet import activations as _activations
from slidenet import initializers
from slidenet._validation import fmt_shape
from slidenet.ops.activations import BACKWARD, FORWARD

_name_counts: dict[str, int] = defaultdict(int)
_MISSING = object()
_PENALTY_SUFFIXES = ("_regularizer", "_constraint")
# attributes that describe the layer, not one call of it (never restored by backward_with_cache)
_NOT_STATE = frozenset(
    {"grads", "built", "_in", "_out", "weight_names", "_own_weights", "_inbound_nodes"}
)


def _takes_training(call) -> bool:
    """Does call(self, inputs, training=...) accept ``training``?"""
    params = inspect.signature(call).parameters
    return "training" in params or any(p.kind == p.VAR_KEYWORD for p in params.values())


def _snake(name: str) -> str:
    s = re.sub(r"([a-z])([A-Z])", r"\1_\2", name)
    return (
        re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", s)
        .lower()
        .replace("2_d", "2d")
        .replace("1_d", "1d")
    )


def unique_name(prefix: str) -> str:
    """Keras-style automatic names: conv2d, conv2d_1, conv2d_2, ..."""
    count = _name_counts[prefix]
    _name_counts[prefix] += 1
    return prefix if count == 0 else f"{prefix}_{count}"


def example_shape(shape, what: str) -> tuple[int, ...]:
    """The shape of one example as a tuple of positive ints, or a ValueError naming ``what``.

    An example needs at least one axis and no axis of size 0 (a batch may be empty, an example may
    not).
    """
    try:
        items = tuple(shape)
    except TypeError:
        items = None
    if not items or any(isinstance(s, bool) or not isinstance(s, int | np.integer) for s in items):
        raise ValueError(
            f"{what} must be one example's shape, a tuple of positive ints such as (28, 28, 1) "
            f"(no batch axis), got {shape!r}."
        )
    if min(items) < 1:
        raise ValueError(
            f"{what} {fmt_shape(items)} has an axis of size {min(items)}; every axis of an "
            "example needs size >= 1 (only the batch may be empty)."
        )
    return tuple(int(s) for s in items)


def batch_array(x, who: str) -> np.ndarray:
    """``x`` as a numeric array with a batch axis (N, ...), or a TypeError/ValueError naming
    ``who``. Bool and integer arrays are accepted (the layer casts them to its dtype)."""
    try:
        x = np.asarray(x)
    except ValueError:  # ragged nested lists
        raise ValueError(
            f"{who}: x is not a rectangular array: its rows have different lengths."
        ) from None
    if x.dtype.kind not in "biuf":
        raise TypeError(
            f"{who}: x has dtype {x.dtype}; expected real numbers (float, integer or bool). "
            "Convert it with x.astype('float32')."
        )
    if x.ndim < 2:
        raise ValueError(
            f"{who} expects a batch of examples shaped (N, ...), got an array of shape "
            f"{fmt_shape(x.shape)}. Add the batch axis, e.g. x[None]."
        )
    return x


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


class Layer:
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

    def __init__(self, name=None, input_shape=None, dtype="float32", trainable=True, **kwargs):
        if "input_dim" in kwargs:
            input_shape = (kwargs.pop("input_dim"),)
        kwargs.pop("batch_input_shape", None)
        penalties = {k: kwargs.pop(k) for k in list(kwargs) if k.endswith(_PENALTY_SUFFIXES)}
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
        from slidenet.models import tape

        self._batch = x.shape[0]
        fresh = self.__dict__.get("_fresh_call", False)
        with tape.recording(tape.Tape(fresh=fresh)) as recorded:
            y = self._run_call(x, training)
        self._tape, self._tape_io = recorded, (x, y)
        return y

    def backward(self, dy):
        """Backward pass: dy (like the output) -> dx (like the input); fills ``self.grads``.

        For a layer that defines ``call``, the recorded layer calls are replayed in reverse.
        """
        recorded = self.__dict__.get("_tape")
        if recorded is None:
            raise NotImplementedError(
                f"{self.label} has no backward pass: define backward(self, dy) returning dx and "
                "setting self.grads (check it with slidenet.utils.gradcheck), or build call() "
                "from slidenet layers only."
            )
        from slidenet.models import tape

        if self._own_weights:
            raise NotImplementedError(
                f"{self.label} uses its own weights ({', '.join(self._own_weights)}) in call(), "
                "so replaying its layer calls cannot give their gradients; define "
                "backward(self, dy) (check it with slidenet.utils.gradcheck)."
            )
        x, y = self._tape_io
        for layer in self._sublayers():
            layer.grads = [None] * len(layer.weights)  # a layer this call skipped: no gradient
        (dx,) = tape.replay(recorded, [x], [y], [dy], self.label)
        self.grads = [g for layer in self._sublayers() for g in layer.grads]
        return np.zeros_like(x) if dx is None else dx

    # ----- composite layers (Keras' call) --------------------------------------------------
    def call(self, inputs, training=False):
        """Keras' way to write a layer: compute the output from other layers (override it)."""
        raise NotImplementedError

    @classmethod
    def _is_composite(cls) -> bool:
        return cls.call is not Layer.call and cls.forward is Layer.forward

    def _run_call(self, x, training):
        if _takes_training(type(self).call):
            return self.call(x, training=training)
        return self.call(x)

    def _dry_run_shape(self, input_shape):
        """Shape of one output example, found by running call on one example of zeros."""
        from slidenet.models import tape

        with tape.recording(None):
            y = self._run_call(np.zeros((1, *input_shape), self.dtype), False)
        if not isinstance(y, np.ndarray) or y.ndim < 1 or len(y) != 1:
            raise TypeError(
                f"{self.label}: call() must return one array with the batch axis first, got "
                f"{type(y).__name__}."
            )
        return tuple(y.shape[1:])

    def _sublayers(self) -> list[Layer]:
        """The layers held in public attributes (also in lists, tuples and dicts), in order."""
        found = []
        for key, value in self.__dict__.items():
            if key.startswith("_"):
                continue
            items = value.values() if isinstance(value, dict) else value
            for v in items if isinstance(value, list | tuple | dict) else [value]:
                if isinstance(v, Layer) and v is not self and all(v is not f for f in found):
                    found.append(v)
        return found

    def _name_composite_weights(self) -> None:
        self.weight_names = tuple(self._own_weights) + tuple(
            f"{layer.name}/{n}" for layer in self._sublayers() for n in layer.weight_names
        )

    def add_weight(
        self, shape=None, initializer="glorot_uniform", dtype=None, trainable=True, name=None
    ):
        """Create a trained weight of ``shape`` (Keras 3's add_weight, for custom layers' build).

        The array is ``self.<name>`` (default names 'kernel', 'kernel_1', ...); the layer's
        ``backward`` must put its gradient in ``grads``, in the order the weights were added.
        """
        if shape is None:
            raise ValueError(f"{self.label}: add_weight needs a shape, e.g. shape=(3, 4).")
        if not trainable:
            raise ValueError(
                f"{self.label}: add_weight(trainable=False) is not supported; keep fixed arrays "
                "as plain attributes."
            )
        if name is None:
            name = "kernel" if not self._own_weights else f"kernel_{len(self._own_weights)}"
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"{self.label}: add_weight needs a name like 'kernel', got {name!r}.")
        if dtype is not None:
            self.dtype = np.dtype(dtype)
        array = initializers.get(initializer)(tuple(int(s) for s in shape), self.dtype)
        setattr(self, name, array)
        if name not in self._own_weights:
            self._own_weights.append(name)
        if not self._is_composite():
            self.weight_names = tuple(self._own_weights)
        return array

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

    def trained_mask(self) -> list[bool]:
        """Which of ``weights`` the optimizer updates: not statistics such as batch norm's
        ``moving_*`` or Normalization's ``mean``/``variance`` (``untrained_weights``); nothing
        of a layer with ``trainable=False``."""
        if not self.trainable:
            return [False] * len(self.weights)
        if self._is_composite() and not self._own_weights:
            return [t for layer in self._sublayers() for t in layer.trained_mask()]
        return [
            not (n.rpartition("/")[2].startswith("moving_") or n in self.untrained_weights)
            for n in self.weight_names
        ]

    # ----- regularizers and constraints ----------------------------------------------------
    def _set_penalties(self, given: dict) -> None:
        """``kernel_regularizer=...``, ``bias_constraint=...`` & co. (any weight prefix)."""
        from slidenet import constraints, regularizers

        self.regularizers, self.constraints = {}, {}
        for key, value in given.items():
            if key == "activity_regularizer":
                if value is not None:
                    raise ValueError(
                        f"{self.label}: activity_regularizer is not supported; regularize the "
                        "weights (kernel_regularizer=...) instead."
                    )
                continue
            prefix, _, kind = key.rpartition("_")
            if kind == "regularizer" and value is not None:
                self.regularizers[prefix] = regularizers.get(value)
            elif kind == "constraint" and value is not None:
                self.constraints[prefix] = constraints.get(value)

    def _weight_named(self, prefix: str):
        names = list(self.weight_names)
        for name in (prefix, f"{prefix}_kernel"):
            if name in names:
                return self.weights[names.index(name)]
        raise ValueError(
            f"{self.label} was given {prefix}_regularizer/{prefix}_constraint but has no weight "
            f"'{prefix}'; its weights are {', '.join(names) or 'none'}."
        )

    def regularized_weights(self) -> list[tuple[np.ndarray, object]]:
        """(weight array, regularizer) pairs of this layer (built), for the training loop."""
        if not self.built or not self.trainable:
            return []
        return [(self._weight_named(p), reg) for p, reg in self.regularizers.items()]

    def constrained_weights(self) -> list[tuple[np.ndarray, object]]:
        """(weight array, constraint) pairs: applied after every optimizer step."""
        if not self.built:
            return []
        return [(self._weight_named(p), con) for p, con in self.constraints.items()]

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
