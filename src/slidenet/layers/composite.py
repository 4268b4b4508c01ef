"""Layers written the Keras way: ``call`` built from other layers, ``add_weight`` in ``build``.

Mixed into :class:`slidenet.layers.base.Layer`. A layer whose class defines ``call`` (and not
``forward``) is a *composite*: its layer calls are recorded while ``call`` runs and replayed
backwards (slidenet.models.tape), its weights are those of the layers it holds in public
attributes (and its own, made with ``add_weight``), and its output shape is found by running
``call`` once on one example of zeros.
"""

from __future__ import annotations

import inspect

import numpy as np

from slidenet import initializers


def _takes_training(call) -> bool:
    """Does call(self, inputs, training=...) accept ``training``?"""
    params = inspect.signature(call).parameters
    return "training" in params or any(p.kind == p.VAR_KEYWORD for p in params.values())


class CompositeMixin:
    def call(self, inputs, training=False):
        """Keras' way to write a layer: compute the output from other layers (override it)."""
        raise NotImplementedError

    @classmethod
    def _is_composite(cls) -> bool:
        from slidenet.layers.base import Layer

        return cls.call is not CompositeMixin.call and cls.forward is Layer.forward

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

    def _sublayers(self) -> list:
        """The layers held in public attributes (also in lists, tuples and dicts), in order."""
        found = []
        for key, value in self.__dict__.items():
            if key.startswith("_"):
                continue
            items = value.values() if isinstance(value, dict) else value
            for v in items if isinstance(value, list | tuple | dict) else [value]:
                if (
                    isinstance(v, CompositeMixin)
                    and v is not self
                    and all(v is not f for f in found)
                ):
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

    def _recorded_forward(self, x, training):
        """forward of a composite: run call with a tape recording its layer calls."""
        from slidenet.models import tape

        self._batch = x.shape[0]
        fresh = self.__dict__.get("_fresh_call", False)
        with tape.recording(tape.Tape(fresh=fresh)) as recorded:
            y = self._run_call(x, training)
        self._tape, self._tape_io = recorded, (x, y)
        return y

    def _replayed_backward(self, dy):
        """backward of a composite: replay the recorded calls in reverse."""
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
