"""The optimizer base class: learning rate (a number or a schedule), gradient clipping, decoupled
weight decay, the step counter and the state arrays.

One step, ``optimizer.apply(weights, grads)``, in Keras 3's order:

1. the learning rate of this step: ``lr = schedule(iterations)``, or the number given;
2. gradient clipping, at most one of ``clipnorm`` (each gradient scaled to an L2 norm of at most
   c), ``global_clipnorm`` (all gradients scaled together so that the norm of their concatenation
   is at most c) and ``clipvalue`` (each entry clipped into [-c, c]);
3. decoupled weight decay (Loshchilov & Hutter 2019) when ``weight_decay`` (wd) is set:
   ``w -= lr * wd * w``, whatever the gradient (unlike an L2 penalty added to the loss);
4. the optimizer's own update of each weight and its state (the subclass's ``_update``);
5. ``iterations += 1``.

With the compiled kernels (:mod:`slidenet.ops.kernels`), steps 3 and 4 are one pass over each
weight and its state for the optimizers that have a kernel (Adam and AdamW, SGD, RMSprop,
Adagrad: ``_update_compiled``), giving the NumPy path's numbers bit for bit; the others, and
arrays a kernel does not take (not C-contiguous, float16, state of another dtype), run the NumPy
code.

Weights are updated in place; the state (momenta, accumulators) lives in lists parallel to the
weights, created on the first step with each weight's shape and dtype. ``variables()`` lists the
state for model files and ``set_variables()`` restores it; with ``iterations`` and the config
that is everything a resumed run needs to continue bit for bit.
"""

from __future__ import annotations

import math

import numpy as np

from slidenet.ops import kernels
from slidenet.optimizers._checks import check_number
from slidenet.optimizers.schedules import LearningRateSchedule
from slidenet.optimizers.schedules import deserialize as deserialize_schedule
from slidenet.optimizers.schedules import serialize as serialize_schedule


class Optimizer:
    """Base class: ``apply(weights, grads)`` updates each weight array in place.

    Args (shared by every optimizer, Keras 3's names):
        learning_rate: a number > 0, or a :class:`~slidenet.optimizers.schedules.
            LearningRateSchedule` evaluated at ``iterations`` before every step.
        weight_decay: None, or a number >= 0: decoupled weight decay ``w -= lr * wd * w``
            before each update.
        clipnorm: None, or a number > 0: each gradient g becomes ``g * c / max(||g||, c)``.
        clipvalue: None, or a number > 0: each gradient entry is clipped into [-c, c].
        global_clipnorm: None, or a number > 0: all gradients are scaled by
            ``c / max(||(g_1, ..., g_n)||, c)``. At most one of the three clip arguments.
        name: a name for the optimizer (default: the class name in lower case).

    Attributes:
        learning_rate: the rate of the next step, a float (the schedule's value at
            ``iterations`` if a schedule was given); assign a number to change it.
        iterations: the number of steps taken.
        slots: the state, ``{slot name: [array per weight]}``, empty before the first step.
    """

    slot_names: tuple[str, ...] = ()

    def __init__(
        self,
        learning_rate=0.01,
        weight_decay=None,
        clipnorm=None,
        clipvalue=None,
        global_clipnorm=None,
        name=None,
    ):
        who = type(self).__name__
        self._learning_rate = self._checked_learning_rate(learning_rate)
        if weight_decay is not None:
            weight_decay = check_number(weight_decay, who, "weight_decay", 0)
        self.weight_decay = weight_decay
        clips = {"clipnorm": clipnorm, "clipvalue": clipvalue, "global_clipnorm": global_clipnorm}
        if sum(v is not None for v in clips.values()) > 1:
            given = ", ".join(f"{k}={v!r}" for k, v in clips.items())
            raise ValueError(
                f"{who}: only one of clipnorm, clipvalue and global_clipnorm can be set, "
                f"got {given}."
            )
        for key, value in clips.items():
            if value is not None:
                clips[key] = check_number(value, who, key, 0, low_open=True)
        self.clipnorm = clips["clipnorm"]
        self.clipvalue = clips["clipvalue"]
        self.global_clipnorm = clips["global_clipnorm"]
        if name is not None and not isinstance(name, str):
            raise ValueError(f"{who}: name must be a string, got {name!r}.")
        self.name = name or who.lower()
        self.iterations = 0
        self.slots: dict[str, list[np.ndarray]] = {}

    # ----- learning rate ------------------------------------------------------------------------
    def _checked_learning_rate(self, value):
        if isinstance(value, LearningRateSchedule):
            return value
        if isinstance(value, dict):  # a serialized schedule (from a config)
            return deserialize_schedule(value)
        return check_number(value, type(self).__name__, "learning_rate", 0, low_open=True)

    @property
    def learning_rate(self) -> float:
        """The learning rate of the next step (a schedule's value at ``iterations``)."""
        lr = self._learning_rate
        if isinstance(lr, LearningRateSchedule):
            return float(lr(self.iterations))
        return lr

    @learning_rate.setter
    def learning_rate(self, value):
        if isinstance(self._learning_rate, LearningRateSchedule) and not isinstance(
            value, LearningRateSchedule
        ):
            raise TypeError(
                f"{type(self).__name__}: this optimizer was created with a LearningRateSchedule "
                "as its learning_rate, hence its learning rate is not settable. Create the "
                f"optimizer with a float learning_rate to set it (got {value!r})."
            )
        self._learning_rate = self._checked_learning_rate(value)

    def _step_learning_rate(self) -> float:
        """The rate of the step about to be taken, checked (a schedule may return anything)."""
        lr = self.learning_rate
        if not (isinstance(lr, float) and math.isfinite(lr) and lr >= 0):
            raise ValueError(
                f"{type(self).__name__}: the learning rate schedule {self._learning_rate!r} "
                f"returned {lr!r} at step {self.iterations}; it must be a finite number >= 0."
            )
        return lr

    # ----- one step -----------------------------------------------------------------------------
    def apply(self, weights: list[np.ndarray], grads: list[np.ndarray]) -> None:
        """One step: clip ``grads``, decay ``weights`` and update them, in place."""
        if not self.slots:
            self.slots = self._new_slots(weights)
        lr = self._step_learning_rate()
        grads = [g.astype(w.dtype, copy=False) for w, g in zip(weights, grads, strict=True)]
        grads = self._clip(grads)
        if kernels.compiled() and len({id(w) for w in weights}) == len(weights):
            self._apply_compiled(weights, grads, lr)
            return
        if self.weight_decay:
            for w in weights:
                w -= w * w.dtype.type(lr * self.weight_decay)
        self.iterations += 1
        for i, (w, g) in enumerate(zip(weights, grads, strict=True)):
            self._update(i, w, g, lr)

    def _apply_compiled(self, weights, grads, lr) -> None:
        """Steps 3-5 with the compiled kernels: weight by weight, decay and update in one pass
        where the subclass has a kernel for it (:meth:`_update_compiled`), else the NumPy decay
        and :meth:`_update`. The same numbers as the NumPy order (all decays, then all updates):
        each weight's decay and update touch only that weight and its state."""
        decayed = bool(self.weight_decay)
        decay = lr * self.weight_decay if decayed else 0.0
        self.iterations += 1
        for i, (w, g) in enumerate(zip(weights, grads, strict=True)):
            if not self._update_compiled(i, w, g, lr, decay, decayed):
                if decayed:
                    w -= w * w.dtype.type(decay)
                self._update(i, w, g, lr)

    def _update_compiled(self, i, w, g, lr, decay, decayed) -> bool:
        """Decay (``w -= w * decay`` if ``decayed``) and update weight ``w`` with a compiled
        kernel, returning True; or return False, changing nothing, where there is no kernel for
        this case (then the NumPy path runs)."""
        return False

    def _clip(self, grads: list[np.ndarray]) -> list[np.ndarray]:
        """Keras' gradient clipping; returns new arrays where it changes anything."""
        if self.clipnorm is not None:
            c = self.clipnorm
            return [g * g.dtype.type(c / max(_norm(g), c)) for g in grads]
        if self.global_clipnorm is not None and grads:
            c = self.global_clipnorm
            total = math.sqrt(sum(_norm(g) ** 2 for g in grads))
            # a NaN or infinite norm gives NaN gradients (as in Keras), never silently zeros
            scale = c / max(total, c) if math.isfinite(total) else math.nan
            return [g * g.dtype.type(scale) for g in grads]
        if self.clipvalue is not None:
            return [np.clip(g, -self.clipvalue, self.clipvalue) for g in grads]
        return grads

    def _new_slots(self, weights) -> dict[str, list[np.ndarray]]:
        """The state before the first step: zeros shaped like each weight, per slot."""
        return {s: [np.zeros_like(w) for w in weights] for s in self.slot_names}

    def _update(self, i, w, g, lr):
        """Update weight ``w`` (index ``i``) in place from gradient ``g`` at learning rate
        ``lr``; ``self.iterations`` is already the number t of this step (1 for the first)."""
        raise NotImplementedError

    # ----- state and config ---------------------------------------------------------------------
    def variables(self) -> list[np.ndarray]:
        """The state arrays, slot by slot (for saving)."""
        return [a for s in self.slot_names for a in self.slots.get(s, [])]

    def set_variables(self, arrays, n_weights: int) -> None:
        """Restore state saved by :meth:`variables` for ``n_weights`` weights."""
        arrays = list(arrays)
        if not arrays:
            self.slots = {}
            return
        if len(arrays) != n_weights * len(self.slot_names):
            raise ValueError(
                f"{type(self).__name__}: saved state has {len(arrays)} arrays, expected "
                f"{n_weights * len(self.slot_names)}."
            )
        self.slots = {
            s: arrays[k * n_weights : (k + 1) * n_weights] for k, s in enumerate(self.slot_names)
        }

    def get_config(self) -> dict:
        """The constructor's arguments as JSON values (a schedule as its serialized dict)."""
        lr = self._learning_rate
        return {
            "name": self.name,
            "learning_rate": serialize_schedule(lr) if isinstance(lr, LearningRateSchedule) else lr,
            "weight_decay": self.weight_decay,
            "clipnorm": self.clipnorm,
            "global_clipnorm": self.global_clipnorm,
            "clipvalue": self.clipvalue,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        if isinstance(config.get("learning_rate"), dict):
            config["learning_rate"] = deserialize_schedule(config["learning_rate"], custom_objects)
        return cls(**config)


def flat_arrays(w, g, *state) -> list[np.ndarray] | None:
    """Flat views of a weight, its gradient and its state for a compiled update, or None unless
    all are C-contiguous float32 or float64 arrays of w's size and dtype (w and the state
    writeable)."""
    dtype = w.dtype
    if dtype not in (np.float32, np.float64):
        return None
    for a in (w, g, *state):
        if a.dtype != dtype or a.size != w.size or not a.flags.c_contiguous:
            return None
        if a is not g and not a.flags.writeable:
            return None
    return [a.reshape(-1) for a in (w, g, *state)]


def _norm(g: np.ndarray) -> float:
    """The L2 norm of an array, as a Python float."""
    flat = g.reshape(-1)
    return math.sqrt(float(np.dot(flat, flat)))


def check_beta(value, who, what) -> float:
    """A decay rate of a moving average: in [0, 1)."""
    return check_number(value, who, what, 0, 1, high_open=True)


def check_epsilon(value, who) -> float:
    return check_number(value, who, "epsilon", 0, low_open=True)
