"""Optimizers: update weights in place from their gradients, with the papers' symbols.

Each keeps its state (momenta) in lists parallel to the weights it is given; state is created on the
first step. ``learning_rate`` is a plain attribute that schedules and callbacks may change.
"""

from __future__ import annotations

import numpy as np

from slidenet._validation import unknown_name
from slidenet.utils.threads import run_in_parts


class Optimizer:
    """Base class: ``apply(weights, grads)`` updates each weight array in place."""

    slot_names: tuple[str, ...] = ()

    def __init__(self, learning_rate=0.01):
        if (
            isinstance(learning_rate, bool)
            or not isinstance(learning_rate, int | float | np.integer | np.floating)
            or not 0 < learning_rate < np.inf
        ):
            raise ValueError(
                f"{type(self).__name__}: learning_rate must be a finite number > 0, "
                f"got {learning_rate!r}."
            )
        self.learning_rate = float(learning_rate)
        self.iterations = 0
        self.slots: dict[str, list[np.ndarray]] = {}

    def apply(self, weights: list[np.ndarray], grads: list[np.ndarray]) -> None:
        """One step: weights[i] -= update(grads[i]), in place."""
        if not self.slots:
            self.slots = {s: [np.zeros_like(w) for w in weights] for s in self.slot_names}
        self.iterations += 1
        for i, (w, g) in enumerate(zip(weights, grads, strict=True)):
            self._update(i, w, g.astype(w.dtype, copy=False))

    def _update(self, i, w, g):
        raise NotImplementedError

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
        return {"learning_rate": self.learning_rate}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with (Nesterov) momentum, as Keras:

    v = momentum * v - lr * g;  w += v   (Nesterov: w += momentum * v - lr * g)
    """

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False):
        super().__init__(learning_rate)
        if not 0 <= momentum < 1:
            raise ValueError(f"SGD: momentum must be in [0, 1), got {momentum!r}.")
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)
        self.slot_names = ("velocity",) if self.momentum else ()

    def _update(self, i, w, g):
        lr = w.dtype.type(self.learning_rate)
        if not self.momentum:
            w -= lr * g
            return
        v = self.slots["velocity"][i]
        v *= self.momentum
        v -= lr * g
        if self.nesterov:
            w += self.momentum * v - lr * g
        else:
            w += v

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) in Keras' form:

    m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
    w -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)
    """

    slot_names = ("m", "v")

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
        super().__init__(learning_rate)
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)

    def _update(self, i, w, g):
        b1, b2, t = self.beta_1, self.beta_2, self.iterations
        f = w.dtype.type
        lr_t = f(self.learning_rate * np.sqrt(1 - b2**t) / (1 - b1**t))
        arrays = [a.reshape(-1) for a in (w, g, self.slots["m"][i], self.slots["v"][i])]
        eps, c1, c2 = f(self.epsilon), f(1 - b1), f(1 - b2)

        # Ten elementwise passes per step: done chunk by chunk, so each chunk stays in cache,
        # and the chunks are shared out between threads (identical results).
        def update(start, stop):
            for w_, g_, m, v in _chunks([a[start:stop] for a in arrays]):
                tmp = np.subtract(g_, m)
                tmp *= c1
                m += tmp  # m = b1 m + (1 - b1) g
                np.multiply(g_, g_, out=tmp)
                tmp -= v
                tmp *= c2
                v += tmp  # v = b2 v + (1 - b2) g^2
                np.sqrt(v, out=tmp)
                tmp += eps
                np.divide(m, tmp, out=tmp)
                tmp *= lr_t
                w_ -= tmp

        run_in_parts(update, w.size, w.size)

    def get_config(self):
        return {
            **super().get_config(),
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "epsilon": self.epsilon,
        }


class RMSprop(Optimizer):
    """RMSprop (Hinton 2012) as Keras: v = rho v + (1 - rho) g^2;  w -= lr * g / sqrt(v + eps)."""

    slot_names = ("velocity",)

    def __init__(self, learning_rate=0.001, rho=0.9, epsilon=1e-7):
        super().__init__(learning_rate)
        self.rho, self.epsilon = float(rho), float(epsilon)

    def _update(self, i, w, g):
        v = self.slots["velocity"][i]
        v += (1 - self.rho) * (g * g - v)
        w -= w.dtype.type(self.learning_rate) * g / np.sqrt(v + w.dtype.type(self.epsilon))

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "epsilon": self.epsilon}


_CHUNK = 32768  # elements per chunk: 4 arrays + a temporary of 128 KiB each fit in L2 cache


def _chunks(arrays):
    """Yield aligned flat slices of same-shaped contiguous arrays, _CHUNK elements at a time."""
    flats = [a.reshape(-1) for a in arrays]
    for start in range(0, flats[0].size, _CHUNK):
        yield tuple(a[start : start + _CHUNK] for a in flats)


_BY_NAME = {"sgd": SGD, "adam": Adam, "rmsprop": RMSprop}


def get(identifier) -> Optimizer:
    """An optimizer from a name ('adam') or an Optimizer instance."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str):
        key = identifier.lower()
        if key in _BY_NAME:
            return _BY_NAME[key]()
        raise unknown_name("optimizer", identifier, _BY_NAME)
    raise TypeError(f"optimizer must be a name or an Optimizer, got {identifier!r}.")


def serialize(opt: Optimizer) -> dict:
    return {"class_name": type(opt).__name__, "config": opt.get_config()}


def deserialize(config: dict) -> Optimizer:
    classes = {cls.__name__: cls for cls in _BY_NAME.values()}
    name = config.get("class_name")
    if name not in classes:
        raise unknown_name("optimizer class", str(name), classes)
    return classes[name].from_config(config["config"])
