"""The Adam family: Adam, AdamW, Adamax and Nadam, in Keras 3's form.

Notation in the docstrings: g the gradient (after clipping), t the step (1 for the first), lr the
learning rate of the step, b1 and b2 ``beta_1`` and ``beta_2``, eps ``epsilon``; m and v the
first- and second-moment estimates (the slots, zero before the first step).
"""

from __future__ import annotations

import numpy as np

from slidenet.optimizers._checks import check_bool
from slidenet.optimizers.base import Optimizer, check_beta, check_epsilon, flat_arrays
from slidenet.utils.threads import run_in_parts


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) in Keras' form:

        m = b1 m + (1 - b1) g
        v = b2 v + (1 - b2) g^2
        w -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)

    The paper's bias corrections are folded into the rate, so eps is added to sqrt(v) (torch adds
    it to sqrt(v / (1 - b2^t))); the two agree when eps is small next to sqrt(v).
    With ``amsgrad=True`` (Reddi et al. 2018) the last line uses v_hat = max(v_hat, v) for v.

    Args:
        learning_rate: a number > 0 or a schedule (default 0.001).
        beta_1, beta_2: b1 and b2, in [0, 1).
        epsilon: eps > 0.
        amsgrad: use the running maximum of v.
        weight_decay, clipnorm, clipvalue, global_clipnorm, name: see :class:`Optimizer`.
    """

    def __init__(
        self,
        learning_rate=0.001,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-7,
        amsgrad=False,
        weight_decay=None,
        clipnorm=None,
        clipvalue=None,
        global_clipnorm=None,
        name=None,
    ):
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm, name)
        who = type(self).__name__
        self.beta_1 = check_beta(beta_1, who, "beta_1")
        self.beta_2 = check_beta(beta_2, who, "beta_2")
        self.epsilon = check_epsilon(epsilon, who)
        self.amsgrad = check_bool(amsgrad, who, "amsgrad")
        self.slot_names = ("m", "v", "v_hat") if self.amsgrad else ("m", "v")

    def _update(self, i, w, g, lr):
        b1, b2, t = self.beta_1, self.beta_2, self.iterations
        f = w.dtype.type
        lr_t = f(lr * np.sqrt(1 - b2**t) / (1 - b1**t))
        eps, c1, c2 = f(self.epsilon), f(1 - b1), f(1 - b2)
        if self.amsgrad:
            m, v, v_hat = self.slots["m"][i], self.slots["v"][i], self.slots["v_hat"][i]
            m += (g - m) * c1
            v += (g * g - v) * c2
            np.maximum(v_hat, v, out=v_hat)
            w -= lr_t * m / (np.sqrt(v_hat) + eps)
            return
        arrays = [a.reshape(-1) for a in (w, g, self.slots["m"][i], self.slots["v"][i])]

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

    def _update_compiled(self, i, w, g, lr, decay, decayed):
        """The same update (and the decay) as one compiled pass: bit for bit the NumPy numbers."""
        if type(self)._update is not Adam._update:  # a subclass with its own math
            return False
        flats = flat_arrays(w, g, *(self.slots[s][i] for s in self.slot_names))
        if flats is None:
            return False
        from slidenet.ops.compiled import optim

        b1, b2, t = self.beta_1, self.beta_2, self.iterations
        f = w.dtype.type
        lr_t = f(lr * np.sqrt(1 - b2**t) / (1 - b1**t))
        eps, c1, c2 = f(self.epsilon), f(1 - b1), f(1 - b2)
        kernel = optim.adam_amsgrad if self.amsgrad else optim.adam
        kernel(*flats, lr_t, c1, c2, eps, f(decay), decayed)
        return True

    def get_config(self):
        return {
            **super().get_config(),
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "epsilon": self.epsilon,
            "amsgrad": self.amsgrad,
        }


class AdamW(Adam):
    """AdamW (Loshchilov & Hutter 2019): Adam with decoupled weight decay lambda
    (``weight_decay``, default 0.004), applied to the weights before Adam's update:

        w -= lr * lambda * w
        m = b1 m + (1 - b1) g;   v = b2 v + (1 - b2) g^2
        w -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)

    The decay is scaled by the learning rate (so a schedule scales both), as in Keras and in
    torch.optim.AdamW (whose ``weight_decay`` is the same lambda). Unlike an L2 penalty added to
    the loss, the decay does not pass through m and v, so every weight shrinks at the same rate
    whatever its gradient history.

    Args:
        learning_rate: a number > 0 or a schedule (default 0.001).
        weight_decay: lambda >= 0 (default 0.004).
        beta_1, beta_2, epsilon, amsgrad: as in :class:`Adam`.
        clipnorm, clipvalue, global_clipnorm, name: see :class:`Optimizer`.
    """

    def __init__(
        self,
        learning_rate=0.001,
        weight_decay=0.004,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-7,
        amsgrad=False,
        clipnorm=None,
        clipvalue=None,
        global_clipnorm=None,
        name=None,
    ):
        if weight_decay is None:
            raise ValueError("AdamW: weight_decay must be a finite number >= 0, got None.")
        super().__init__(
            learning_rate,
            beta_1,
            beta_2,
            epsilon,
            amsgrad,
            weight_decay,
            clipnorm,
            clipvalue,
            global_clipnorm,
            name,
        )


class Adamax(Optimizer):
    """Adamax (Kingma & Ba 2015, section 7.1): Adam with the infinity norm in place of v:

        m = b1 m + (1 - b1) g
        u = max(b2 u, |g|)
        w -= lr / (1 - b1^t) * m / (u + eps)

    Keras adds eps to u; torch.optim.Adamax takes u = max(b2 u, |g| + eps) instead (the same
    for a small eps).

    Args:
        learning_rate: a number > 0 or a schedule (default 0.001).
        beta_1, beta_2: b1 and b2, in [0, 1).
        epsilon: eps > 0.
        weight_decay, clipnorm, clipvalue, global_clipnorm, name: see :class:`Optimizer`.
    """

    slot_names = ("m", "u")

    def __init__(
        self,
        learning_rate=0.001,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-7,
        weight_decay=None,
        clipnorm=None,
        clipvalue=None,
        global_clipnorm=None,
        name=None,
    ):
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm, name)
        who = type(self).__name__
        self.beta_1 = check_beta(beta_1, who, "beta_1")
        self.beta_2 = check_beta(beta_2, who, "beta_2")
        self.epsilon = check_epsilon(epsilon, who)

    def _update(self, i, w, g, lr):
        f = w.dtype.type
        m, u = self.slots["m"][i], self.slots["u"][i]
        m += (g - m) * f(1 - self.beta_1)
        np.maximum(u * f(self.beta_2), np.abs(g), out=u)
        w -= f(lr) * m / (f(1 - self.beta_1**self.iterations) * (u + f(self.epsilon)))

    def get_config(self):
        return {
            **super().get_config(),
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "epsilon": self.epsilon,
        }


class Nadam(Optimizer):
    """Nadam (Dozat 2016): Adam with Nesterov momentum, and the momentum schedule
    u_t = b1 (1 - 0.5 * 0.96^(0.004 t)) of Keras (torch.optim.NAdam's ``momentum_decay=0.004``):

        m = b1 m + (1 - b1) g
        v = b2 v + (1 - b2) g^2
        m_hat = u_{t+1} m / (1 - U_{t+1}) + (1 - u_t) g / (1 - U_t),   U_t = u_1 u_2 ... u_t
        v_hat = v / (1 - b2^t)
        w -= lr * m_hat / (sqrt(v_hat) + eps)

    The product U_t is a function of t alone: it is recomputed from ``iterations`` when needed
    (after loading a model, say), in the same order as during training, so it is not saved.

    Args:
        learning_rate: a number > 0 or a schedule (default 0.001).
        beta_1, beta_2: b1 and b2, in [0, 1).
        epsilon: eps > 0.
        weight_decay, clipnorm, clipvalue, global_clipnorm, name: see :class:`Optimizer`.
    """

    slot_names = ("m", "v")

    def __init__(
        self,
        learning_rate=0.001,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-7,
        weight_decay=None,
        clipnorm=None,
        clipvalue=None,
        global_clipnorm=None,
        name=None,
    ):
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm, name)
        who = type(self).__name__
        self.beta_1 = check_beta(beta_1, who, "beta_1")
        self.beta_2 = check_beta(beta_2, who, "beta_2")
        self.epsilon = check_epsilon(epsilon, who)
        self._u_product = (0, 1.0)  # (t, U_t)

    def _u(self, t: int) -> float:
        """The momentum of step t, u_t = b1 (1 - 0.5 * 0.96^(0.004 t))."""
        return self.beta_1 * (1.0 - 0.5 * 0.96 ** (t * 0.004))

    def _product(self, t: int) -> float:
        """U_t = u_1 ... u_t, multiplied up in step order (from the last step's value)."""
        done, product = self._u_product
        if done > t:
            done, product = 0, 1.0
        for k in range(done + 1, t + 1):
            product *= self._u(k)
        self._u_product = (t, product)
        return product

    def _update(self, i, w, g, lr):
        t, b1, b2 = self.iterations, self.beta_1, self.beta_2
        f = w.dtype.type
        u_t, u_next = self._u(t), self._u(t + 1)
        product = self._product(t)
        product_next = product * u_next
        m, v = self.slots["m"][i], self.slots["v"][i]
        m += (g - m) * f(1 - b1)
        v += (g * g - v) * f(1 - b2)
        m_hat = f(u_next / (1 - product_next)) * m + f((1 - u_t) / (1 - product)) * g
        v_hat = v / f(1 - b2**t)
        w -= f(lr) * m_hat / (np.sqrt(v_hat) + f(self.epsilon))

    def get_config(self):
        return {
            **super().get_config(),
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "epsilon": self.epsilon,
        }


_CHUNK = 32768  # elements per chunk: 4 arrays + a temporary of 128 KiB each fit in L2 cache


def _chunks(arrays):
    """Yield aligned flat slices of same-shaped contiguous arrays, _CHUNK elements at a time."""
    flats = [a.reshape(-1) for a in arrays]
    for start in range(0, flats[0].size, _CHUNK):
        yield tuple(a[start : start + _CHUNK] for a in flats)
