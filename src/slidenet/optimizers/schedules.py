"""Learning rate schedules (Keras 3's ``keras.optimizers.schedules``): functions of the step.

Pass one as ``learning_rate=`` to any optimizer: before every update the optimizer evaluates it
at its step counter ``iterations`` (0 for the first update), and ``optimizer.learning_rate``
reports that current value as a float. A schedule is also a plain function: call it on a step
(an int) to get a float, or on an array of steps to get an array, e.g. to plot it.

Notation: t the step, lr_0 ``initial_learning_rate``, T ``decay_steps``.

    ExponentialDecay        lr_0 * r^(t / T)                   (staircase: r^floor(t / T))
    InverseTimeDecay        lr_0 / (1 + r * t / T)             (staircase: floor(t / T))
    PolynomialDecay         (lr_0 - lr_end) * (1 - min(t, T) / T)^power + lr_end
    CosineDecay             lr_0 * ((1 - alpha) * (1 + cos(pi * min(t, T) / T)) / 2 + alpha),
                            after an optional linear warm-up from lr_0 to ``warmup_target``
    PiecewiseConstantDecay  values[0] for t <= boundaries[0], values[1] up to boundaries[1], ...

Schedules are saved in model files through ``get_config()`` (plain JSON numbers) and rebuilt by
:func:`deserialize`; a schedule of your own subclasses :class:`LearningRateSchedule` and
implements ``__call__(step)`` and ``get_config()``.

>>> from slidenet import optimizers
>>> schedule = optimizers.schedules.CosineDecay(0.1, decay_steps=100)
>>> schedule(0), schedule(50), schedule(100), schedule(1000)
(0.1, 0.05, 0.0, 0.0)
>>> optimizers.SGD(learning_rate=schedule).learning_rate  # evaluated at iterations = 0
0.1
"""

from __future__ import annotations

import math

import numpy as np

from slidenet._validation import unknown_name
from slidenet.optimizers._checks import check_bool, check_number, is_real, plain_number


def _steps(step) -> np.ndarray:
    return np.asarray(step, dtype=np.float64)


def _result(lr: np.ndarray):
    """A float for one step, an array for an array of steps."""
    lr = np.asarray(lr, dtype=np.float64)
    return float(lr) if lr.ndim == 0 else lr


class LearningRateSchedule:
    """Base class: ``schedule(step) -> learning rate``; subclasses implement ``__call__`` and
    ``get_config`` (the arguments of ``__init__``, as JSON values)."""

    def __call__(self, step):
        raise NotImplementedError(
            f"Learning rate schedule '{type(self).__name__}' must override `__call__(self, step)`."
        )

    def get_config(self) -> dict:
        raise NotImplementedError(
            f"Learning rate schedule '{type(self).__name__}' must override `get_config()` "
            "in order to be serializable."
        )

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        try:
            args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        except NotImplementedError:
            args = ""
        return f"{type(self).__name__}({args})"


def _decay_steps(who, decay_steps):
    check_number(decay_steps, who, "decay_steps", 0, low_open=True)
    return plain_number(decay_steps)


class ExponentialDecay(LearningRateSchedule):
    """``lr_0 * decay_rate ** (step / decay_steps)``; with ``staircase=True`` the exponent is
    ``floor(step / decay_steps)``, so the rate drops by ``decay_rate`` every ``decay_steps`` steps.

    Args:
        initial_learning_rate: lr_0, a number >= 0.
        decay_steps: T, a number > 0.
        decay_rate: r, a number > 0.
        staircase: decay at whole multiples of T only.
        name: a name, kept in the config.

    >>> ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5, staircase=True)(25)
    0.025
    """

    def __init__(
        self,
        initial_learning_rate,
        decay_steps,
        decay_rate,
        staircase=False,
        name="ExponentialDecay",
    ):
        who = type(self).__name__
        check_number(initial_learning_rate, who, "initial_learning_rate", 0)
        self.initial_learning_rate = plain_number(initial_learning_rate)
        self.decay_steps = _decay_steps(who, decay_steps)
        check_number(decay_rate, who, "decay_rate", 0, low_open=True)
        self.decay_rate = plain_number(decay_rate)
        self.staircase = check_bool(staircase, who, "staircase")
        self.name = name

    def __call__(self, step):
        p = _steps(step) / self.decay_steps
        if self.staircase:
            p = np.floor(p)
        return _result(self.initial_learning_rate * np.power(float(self.decay_rate), p))

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "decay_rate": self.decay_rate,
            "staircase": self.staircase,
            "name": self.name,
        }


class InverseTimeDecay(LearningRateSchedule):
    """``lr_0 / (1 + decay_rate * step / decay_steps)`` (with ``staircase=True``:
    ``floor(step / decay_steps)`` in place of ``step / decay_steps``).

    Args:
        initial_learning_rate: lr_0, a number >= 0.
        decay_steps: T, a number > 0.
        decay_rate: r, a number >= 0.
        staircase: decay at whole multiples of T only.
        name: a name, kept in the config.

    >>> InverseTimeDecay(0.1, decay_steps=1, decay_rate=0.5)(2)
    0.05
    """

    def __init__(
        self,
        initial_learning_rate,
        decay_steps,
        decay_rate,
        staircase=False,
        name="InverseTimeDecay",
    ):
        who = type(self).__name__
        check_number(initial_learning_rate, who, "initial_learning_rate", 0)
        self.initial_learning_rate = plain_number(initial_learning_rate)
        self.decay_steps = _decay_steps(who, decay_steps)
        check_number(decay_rate, who, "decay_rate", 0)
        self.decay_rate = plain_number(decay_rate)
        self.staircase = check_bool(staircase, who, "staircase")
        self.name = name

    def __call__(self, step):
        p = _steps(step) / self.decay_steps
        if self.staircase:
            p = np.floor(p)
        return _result(self.initial_learning_rate / (1.0 + self.decay_rate * p))

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "decay_rate": self.decay_rate,
            "staircase": self.staircase,
            "name": self.name,
        }


class PolynomialDecay(LearningRateSchedule):
    """From lr_0 to ``end_learning_rate`` in ``decay_steps`` steps along a polynomial:

        lr = (lr_0 - lr_end) * (1 - t / T) ** power + lr_end,   t = min(step, T)

    then ``end_learning_rate`` from step T on. With ``cycle=True`` T grows to the first multiple
    of ``decay_steps`` not below the step, ``T * ceil(step / T)`` (``T`` at step 0), so the rate
    jumps back up and decays again, each time more slowly.

    Args:
        initial_learning_rate: lr_0, a number >= 0.
        decay_steps: T, a number > 0.
        end_learning_rate: lr_end, a number >= 0 (Keras' default 0.0001).
        power: the exponent, a number >= 0 (1: linear decay).
        cycle: restart the decay after every T steps, as above.
        name: a name, kept in the config.

    >>> PolynomialDecay(0.1, decay_steps=10, end_learning_rate=0.0, power=2)(5)
    0.025
    """

    def __init__(
        self,
        initial_learning_rate,
        decay_steps,
        end_learning_rate=0.0001,
        power=1.0,
        cycle=False,
        name="PolynomialDecay",
    ):
        who = type(self).__name__
        check_number(initial_learning_rate, who, "initial_learning_rate", 0)
        self.initial_learning_rate = plain_number(initial_learning_rate)
        self.decay_steps = _decay_steps(who, decay_steps)
        check_number(end_learning_rate, who, "end_learning_rate", 0)
        self.end_learning_rate = plain_number(end_learning_rate)
        check_number(power, who, "power", 0)
        self.power = plain_number(power)
        self.cycle = check_bool(cycle, who, "cycle")
        self.name = name

    def __call__(self, step):
        t = _steps(step)
        T = float(self.decay_steps)
        if self.cycle:  # the first multiple of T not below t (T itself at t = 0)
            T = T * np.where(t == 0, 1.0, np.ceil(t / T))
        else:
            t = np.minimum(t, T)
        p = t / T
        lr_0, lr_end = self.initial_learning_rate, self.end_learning_rate
        return _result((lr_0 - lr_end) * np.power(1.0 - p, float(self.power)) + lr_end)

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "end_learning_rate": self.end_learning_rate,
            "power": self.power,
            "cycle": self.cycle,
            "name": self.name,
        }


class CosineDecay(LearningRateSchedule):
    """Cosine decay (Loshchilov & Hutter 2017, SGDR, without restarts), after an optional linear
    warm-up (Goyal et al. 2017).

    Without warm-up (``warmup_target=None``), from lr_0 down to ``alpha * lr_0`` in T steps:

        lr = lr_0 * ((1 - alpha) * (1 + cos(pi * t / T)) / 2 + alpha),   t = min(step, T)

    With warm-up, the rate first rises linearly from lr_0 to ``warmup_target`` during
    ``warmup_steps`` steps, ``lr_0 + (warmup_target - lr_0) * step / warmup_steps``; the cosine
    decay above then runs from ``warmup_target`` (in place of lr_0) with t = step -
    warmup_steps, and the rate stays at ``alpha * warmup_target`` after ``warmup_steps + T``
    steps.

    Args:
        initial_learning_rate: lr_0, a number >= 0 (the start of the warm-up, often 0).
        decay_steps: T, a number > 0.
        alpha: the final rate as a fraction of the rate the decay starts from, in [0, 1].
        name: a name, kept in the config.
        warmup_target: None (no warm-up) or the rate reached at the end of the warm-up, >= 0.
        warmup_steps: the length of the warm-up, an int >= 0.

    >>> warm = CosineDecay(0.0, decay_steps=10, warmup_target=0.1, warmup_steps=5)
    >>> [round(warm(t), 4) for t in (0, 1, 5, 10, 15, 20)]
    [0.0, 0.02, 0.1, 0.05, 0.0, 0.0]
    """

    def __init__(
        self,
        initial_learning_rate,
        decay_steps,
        alpha=0.0,
        name="CosineDecay",
        warmup_target=None,
        warmup_steps=0,
    ):
        who = type(self).__name__
        check_number(initial_learning_rate, who, "initial_learning_rate", 0)
        self.initial_learning_rate = plain_number(initial_learning_rate)
        self.decay_steps = _decay_steps(who, decay_steps)
        check_number(alpha, who, "alpha", 0, 1)
        self.alpha = plain_number(alpha)
        self.name = name
        if warmup_target is not None:
            check_number(warmup_target, who, "warmup_target", 0)
            warmup_target = plain_number(warmup_target)
        self.warmup_target = warmup_target
        if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, int | np.integer):
            if not (is_real(warmup_steps) and float(warmup_steps).is_integer()):
                raise ValueError(
                    f"{who}: warmup_steps must be an integer >= 0, got {warmup_steps!r}."
                )
        if warmup_steps < 0:
            raise ValueError(f"{who}: warmup_steps must be an integer >= 0, got {warmup_steps!r}.")
        self.warmup_steps = int(warmup_steps)

    def _decay(self, t, lr_from):
        cosine = 0.5 * (1.0 + np.cos(math.pi * (t / float(self.decay_steps))))
        return lr_from * ((1.0 - self.alpha) * cosine + self.alpha)

    def __call__(self, step):
        t = _steps(step)
        T, W = float(self.decay_steps), float(self.warmup_steps)
        if self.warmup_target is None:
            return _result(self._decay(np.minimum(t, T), self.initial_learning_rate))
        t = np.minimum(t, T + W)
        lr_0, target = self.initial_learning_rate, self.warmup_target
        decayed = self._decay(np.maximum(t - W, 0.0), target)
        if W == 0:
            return _result(decayed)
        warm = lr_0 + (target - lr_0) * (t / W)
        return _result(np.where(t < W, warm, decayed))

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "alpha": self.alpha,
            "name": self.name,
            "warmup_target": self.warmup_target,
            "warmup_steps": self.warmup_steps,
        }


class PiecewiseConstantDecay(LearningRateSchedule):
    """Constant pieces: ``values[0]`` while ``step <= boundaries[0]``, ``values[1]`` while
    ``boundaries[0] < step <= boundaries[1]``, ..., ``values[-1]`` after ``boundaries[-1]``.

    Args:
        boundaries: strictly increasing step numbers, one fewer than ``values``.
        values: the learning rates of the pieces, numbers >= 0.
        name: a name, kept in the config.

    >>> schedule = PiecewiseConstantDecay(boundaries=[100, 150], values=[1.0, 0.5, 0.1])
    >>> schedule(100), schedule(101), schedule(151)
    (1.0, 0.5, 0.1)
    """

    def __init__(self, boundaries, values, name="PiecewiseConstant"):
        who = type(self).__name__
        try:
            boundaries, values = list(boundaries), list(values)
        except TypeError:
            raise ValueError(
                f"{who}: boundaries and values must be lists of numbers, got "
                f"boundaries={boundaries!r}, values={values!r}."
            ) from None
        if len(boundaries) != len(values) - 1:
            raise ValueError(
                f"{who}: boundaries must have one element fewer than values, got "
                f"{len(boundaries)} boundaries {boundaries} and {len(values)} values {values}."
            )
        for b in boundaries:
            check_number(b, who, "each boundary")
        for v in values:
            check_number(v, who, "each value", 0)
        if any(b >= c for b, c in zip(boundaries, boundaries[1:], strict=False)):
            raise ValueError(f"{who}: boundaries must be strictly increasing, got {boundaries}.")
        self.boundaries = [plain_number(b) for b in boundaries]
        self.values = [plain_number(v) for v in values]
        self.name = name

    def __call__(self, step):
        piece = np.searchsorted(np.asarray(self.boundaries, np.float64), _steps(step), "left")
        return _result(np.asarray(self.values, np.float64)[piece])

    def get_config(self):
        return {"boundaries": list(self.boundaries), "values": list(self.values), "name": self.name}


_BUILT_IN = {
    cls.__name__: cls
    for cls in (
        ExponentialDecay,
        InverseTimeDecay,
        PolynomialDecay,
        CosineDecay,
        PiecewiseConstantDecay,
    )
}


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def serialize(schedule: LearningRateSchedule) -> dict:
    """``{"class_name": ..., "config": schedule.get_config()}``, for JSON."""
    if not isinstance(schedule, LearningRateSchedule):
        raise TypeError(f"serialize: expected a LearningRateSchedule, got {schedule!r}.")
    return {"class_name": type(schedule).__name__, "config": schedule.get_config()}


def deserialize(config: dict, custom_objects=None) -> LearningRateSchedule:
    """The schedule described by :func:`serialize`'s dict.

    The class is one of this module's, one named in ``custom_objects`` ({name: class}), or a
    subclass of :class:`LearningRateSchedule` defined in the running program with that name.
    """
    if not isinstance(config, dict) or not isinstance(config.get("config", {}), dict):
        raise TypeError(f"deserialize: expected a serialized schedule dict, got {config!r}.")
    name = config.get("class_name")
    classes = dict(_BUILT_IN)
    for sub in _subclasses(LearningRateSchedule):
        classes.setdefault(sub.__name__, sub)
    classes.update(custom_objects or {})
    if name not in classes:
        raise unknown_name("learning rate schedule", str(name), classes)
    return classes[name].from_config(dict(config.get("config", {})))


def get(identifier) -> LearningRateSchedule:
    """A schedule from a schedule (returned as is) or a serialized dict."""
    if isinstance(identifier, LearningRateSchedule):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    raise TypeError(f"schedules.get: expected a schedule or a dict, got {identifier!r}.")
