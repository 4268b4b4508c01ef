"""Per-entry rates from accumulated squared gradients: RMSprop, Adagrad and Adadelta.

Notation: g the gradient (after clipping), lr the learning rate of the step, eps ``epsilon``.
Keras adds eps inside the square roots, sqrt(a + eps); torch.optim adds it outside,
sqrt(a) + eps (except in Adadelta, where both put it inside): the two agree when eps is small
next to the accumulated a.
"""

from __future__ import annotations

import numpy as np

from slidenet.optimizers._checks import check_bool, check_number
from slidenet.optimizers.base import Optimizer, check_beta, check_epsilon, flat_arrays


class RMSprop(Optimizer):
    """RMSprop (Hinton 2012) as Keras, with rho the decay of the average of g^2:

        v = rho v + (1 - rho) g^2
        d = lr g / sqrt(v + eps)                      (centered: sqrt(v - a^2 + eps),
                                                       a = rho a + (1 - rho) g)
        w -= d                                        (momentum mu > 0: p = mu p + d; w -= p)

    Args:
        learning_rate: a number > 0 or a schedule (default 0.001).
        rho: in [0, 1).
        momentum: mu in [0, 1).
        epsilon: eps > 0.
        centered: divide by an estimate of the variance of g instead of its second moment.
        weight_decay, clipnorm, clipvalue, global_clipnorm, name: see :class:`Optimizer`.
    """

    def __init__(
        self,
        learning_rate=0.001,
        rho=0.9,
        momentum=0.0,
        epsilon=1e-7,
        centered=False,
        weight_decay=None,
        clipnorm=None,
        clipvalue=None,
        global_clipnorm=None,
        name=None,
    ):
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm, name)
        who = type(self).__name__
        self.rho = check_beta(rho, who, "rho")
        self.momentum = check_number(momentum, who, "momentum", 0, 1, high_open=True)
        self.epsilon = check_epsilon(epsilon, who)
        self.centered = check_bool(centered, who, "centered")
        self.slot_names = (
            ("velocity",)
            + (("momentum",) if self.momentum else ())
            + (("average_gradient",) if self.centered else ())
        )

    def _update(self, i, w, g, lr):
        f = w.dtype.type
        v = self.slots["velocity"][i]
        v += f(1 - self.rho) * (g * g - v)
        if self.centered:
            a = self.slots["average_gradient"][i]
            a += f(1 - self.rho) * (g - a)
            step = f(lr) * g / np.sqrt(v - a * a + f(self.epsilon))
        else:
            step = f(lr) * g / np.sqrt(v + f(self.epsilon))
        if self.momentum:
            p = self.slots["momentum"][i]
            p *= f(self.momentum)
            p += step
            step = p
        w -= step

    def _update_compiled(self, i, w, g, lr, decay, decayed):
        """The same update (and the decay) as one compiled pass: bit for bit the NumPy numbers."""
        if type(self)._update is not RMSprop._update:  # a subclass with its own math
            return False
        flats = flat_arrays(w, g, *(self.slots[s][i] for s in self.slot_names))
        if flats is None:
            return False
        from slidenet.ops.compiled import optim

        f = w.dtype.type
        state = dict(zip(self.slot_names, flats[2:], strict=True))
        v = state["velocity"]
        optim.rmsprop(
            *flats[:2],
            v,
            state.get("momentum", v),  # unused (never touched) without momentum / centering
            state.get("average_gradient", v),
            f(lr),
            f(1 - self.rho),
            f(self.momentum),
            f(self.epsilon),
            bool(self.momentum),
            self.centered,
            f(decay),
            decayed,
        )
        return True

    def get_config(self):
        return {
            **super().get_config(),
            "rho": self.rho,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "centered": self.centered,
        }


class Adagrad(Optimizer):
    """Adagrad (Duchi, Hazan & Singer 2011): each entry's rate shrinks with the sum of its
    squared gradients, accumulated from ``initial_accumulator_value``:

        G = G + g^2
        w -= lr * g / sqrt(G + eps)

    torch.optim.Adagrad starts G at 0 by default (``initial_accumulator_value=0``) and takes
    sqrt(G) + eps.

    Args:
        learning_rate: a number > 0 or a schedule (default 0.001; the paper's form is lr = 1).
        initial_accumulator_value: G before the first step, >= 0 (default 0.1).
        epsilon: eps > 0.
        weight_decay, clipnorm, clipvalue, global_clipnorm, name: see :class:`Optimizer`.
    """

    slot_names = ("accumulator",)

    def __init__(
        self,
        learning_rate=0.001,
        initial_accumulator_value=0.1,
        epsilon=1e-7,
        weight_decay=None,
        clipnorm=None,
        clipvalue=None,
        global_clipnorm=None,
        name=None,
    ):
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm, name)
        who = type(self).__name__
        self.initial_accumulator_value = check_number(
            initial_accumulator_value, who, "initial_accumulator_value", 0
        )
        self.epsilon = check_epsilon(epsilon, who)

    def _new_slots(self, weights):
        return {"accumulator": [np.full_like(w, self.initial_accumulator_value) for w in weights]}

    def _update(self, i, w, g, lr):
        f = w.dtype.type
        G = self.slots["accumulator"][i]
        G += g * g
        w -= f(lr) * g / np.sqrt(G + f(self.epsilon))

    def _update_compiled(self, i, w, g, lr, decay, decayed):
        """The same update (and the decay) as one compiled pass: bit for bit the NumPy numbers."""
        if type(self)._update is not Adagrad._update:  # a subclass with its own math
            return False
        flats = flat_arrays(w, g, self.slots["accumulator"][i])
        if flats is None:
            return False
        from slidenet.ops.compiled import optim

        f = w.dtype.type
        optim.adagrad(*flats, f(lr), f(self.epsilon), f(decay), decayed)
        return True

    def get_config(self):
        return {
            **super().get_config(),
            "initial_accumulator_value": self.initial_accumulator_value,
            "epsilon": self.epsilon,
        }


class Adadelta(Optimizer):
    """Adadelta (Zeiler 2012, Algorithm 1), with running averages E[g^2] and E[d^2] of decay rho
    and RMS[x] = sqrt(E[x^2] + eps):

        E[g^2] = rho E[g^2] + (1 - rho) g^2
        d = -RMS[d] / RMS[g] * g          (RMS[d] from the previous step)
        E[d^2] = rho E[d^2] + (1 - rho) d^2
        w += lr * d

    The paper has no learning rate (lr = 1, as torch.optim.Adadelta's default); Keras' default
    is 0.001.

    Args:
        learning_rate: a number > 0 or a schedule (default 0.001).
        rho: in [0, 1) (default 0.95).
        epsilon: eps > 0.
        weight_decay, clipnorm, clipvalue, global_clipnorm, name: see :class:`Optimizer`.
    """

    slot_names = ("accumulated_grad", "accumulated_delta_var")

    def __init__(
        self,
        learning_rate=0.001,
        rho=0.95,
        epsilon=1e-7,
        weight_decay=None,
        clipnorm=None,
        clipvalue=None,
        global_clipnorm=None,
        name=None,
    ):
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm, name)
        who = type(self).__name__
        self.rho = check_beta(rho, who, "rho")
        self.epsilon = check_epsilon(epsilon, who)

    def _update(self, i, w, g, lr):
        f = w.dtype.type
        rho, eps = f(self.rho), f(self.epsilon)
        Eg2, Ed2 = self.slots["accumulated_grad"][i], self.slots["accumulated_delta_var"][i]
        Eg2 *= rho
        Eg2 += f(1 - self.rho) * g * g
        d = -np.sqrt(Ed2 + eps) / np.sqrt(Eg2 + eps) * g
        Ed2 *= rho
        Ed2 += f(1 - self.rho) * d * d
        w += f(lr) * d

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "epsilon": self.epsilon}
