"""Momentum methods: SGD (with optional (Nesterov) momentum) and Lion.

Notation: g the gradient (after clipping), lr the learning rate of the step.
"""

from __future__ import annotations

import numpy as np

from slidenet.optimizers._checks import check_bool, check_number
from slidenet.optimizers.base import Optimizer, check_beta, flat_arrays


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with (Nesterov) momentum mu, as Keras:

        v = mu v - lr g;   w += v                      (momentum)
        v = mu v - lr g;   w += mu v - lr g            (nesterov=True)
        w -= lr g                                      (momentum=0)

    torch.optim.SGD keeps b = mu b + g and takes w -= lr b: the same steps while lr is constant.
    Keras' ``weight_decay`` is decoupled (``w -= lr * wd * w`` before the step); torch's adds
    ``wd * w`` to g, which is the same thing only without momentum.

    Args:
        learning_rate: a number > 0 or a schedule (default 0.01).
        momentum: mu in [0, 1).
        nesterov: use Nesterov momentum.
        weight_decay, clipnorm, clipvalue, global_clipnorm, name: see :class:`Optimizer`.
    """

    def __init__(
        self,
        learning_rate=0.01,
        momentum=0.0,
        nesterov=False,
        weight_decay=None,
        clipnorm=None,
        clipvalue=None,
        global_clipnorm=None,
        name=None,
    ):
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm, name)
        who = type(self).__name__
        self.momentum = check_number(momentum, who, "momentum", 0, 1, high_open=True)
        self.nesterov = check_bool(nesterov, who, "nesterov")
        self.slot_names = ("velocity",) if self.momentum else ()

    def _update(self, i, w, g, lr):
        lr = w.dtype.type(lr)
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

    def _update_compiled(self, i, w, g, lr, decay, decayed):
        """The same update (and the decay) as one compiled pass: bit for bit the NumPy numbers."""
        if type(self)._update is not SGD._update:  # a subclass with its own math
            return False
        state = [self.slots["velocity"][i]] if self.momentum else []
        flats = flat_arrays(w, g, *state)
        if flats is None:
            return False
        from slidenet.ops.compiled import optim

        f = w.dtype.type
        if self.momentum:
            optim.sgd_momentum(*flats, f(lr), f(self.momentum), self.nesterov, f(decay), decayed)
        else:
            optim.sgd(*flats, f(lr), f(decay), decayed)
        return True

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class Lion(Optimizer):
    """Lion, EvoLved Sign Momentum (Chen et al. 2023, "Symbolic Discovery of Optimization
    Algorithms", Algorithm 2), with b1 ``beta_1`` and b2 ``beta_2``:

        c = b1 m + (1 - b1) g
        w -= lr * sign(c)
        m = b2 m + (1 - b2) g

    Every entry moves by exactly lr (or 0), so Lion wants a smaller learning rate than Adam
    (3-10x smaller, says the paper) and, with ``weight_decay``, a larger decay. The paper's
    decay, ``w -= lr * (sign(c) + wd * w)``, is the decoupled decay of :class:`Optimizer`.

    Args:
        learning_rate: a number > 0 or a schedule (default 0.001).
        beta_1: b1 in (0, 1] (at 0 Lion would be signSGD).
        beta_2: b2 in [0, 1).
        weight_decay, clipnorm, clipvalue, global_clipnorm, name: see :class:`Optimizer`.
    """

    slot_names = ("m",)

    def __init__(
        self,
        learning_rate=0.001,
        beta_1=0.9,
        beta_2=0.99,
        weight_decay=None,
        clipnorm=None,
        clipvalue=None,
        global_clipnorm=None,
        name=None,
    ):
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm, name)
        who = type(self).__name__
        self.beta_1 = check_number(beta_1, who, "beta_1", 0, 1, low_open=True)
        self.beta_2 = check_beta(beta_2, who, "beta_2")

    def _update(self, i, w, g, lr):
        f = w.dtype.type
        m = self.slots["m"][i]
        c = m * f(self.beta_1) + g * f(1 - self.beta_1)
        w -= f(lr) * np.sign(c)
        m *= f(self.beta_2)
        m += g * f(1 - self.beta_2)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2}
