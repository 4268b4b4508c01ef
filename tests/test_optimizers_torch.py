"""Every optimizer against torch.optim, step by step for 100 steps, in float64, on a tiny linear
least-squares model (so each step's gradient depends on the weights the optimizer left).

Both sides get their gradients from the same NumPy function of their own current weights; only
the optimizers' arithmetic differs. Where Keras and torch differ by convention the case says so:
eps inside vs outside the square root (Adagrad, Adamax, RMSprop) is compared with eps tiny and,
with Keras' default eps, against a NumPy transcription of the Keras formula; Adam's eps (added
after the bias correction is folded into the rate) is matched exactly by giving torch the
equivalent eps at every step (:func:`keras_eps`); torch's NAdam is given float64 state
(:func:`float64_nadam`). Keras' weight decay is decoupled (w -= lr * wd * w before the step);
torch's ``weight_decay`` is an L2 term added to the gradient except in AdamW (and NAdam/Adam
with ``decoupled_weight_decay=True``), so for the others the decoupled decay is applied by hand
to the torch parameters before torch's step. torch has no Lion: it is compared with a
transcription of the paper's Algorithm 2.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from slidenet import optimizers
from torch_oracle import leaf, to_numpy

STEPS = 100
RNG = np.random.default_rng(7)
X = RNG.normal(size=(16, 3))
Y = RNG.normal(size=(16, 2)) + X @ RNG.normal(size=(3, 2))
W0 = [RNG.normal(size=(3, 2)), RNG.normal(size=(2,))]


def gradients(weights, scale=1.0):
    """d/dW of scale * mean((X W + b - Y)^2) for the kernel W and the bias b."""
    kernel, bias = weights
    r = X @ kernel + bias - Y
    c = scale * 2.0 / r.size
    return [c * X.T @ r, c * r.sum(axis=0)]


def run_ours(opt, scale=1.0, steps=STEPS):
    weights = [w.copy() for w in W0]
    trajectory = []
    for _ in range(steps):
        opt.apply(weights, gradients(weights, scale))
        trajectory.append([w.copy() for w in weights])
    return trajectory


def run_torch(make_opt, decay=None, scale=1.0, steps=STEPS):
    """torch's trajectory; ``decay=(lr, wd)`` multiplies the parameters by (1 - lr * wd) before
    every step (Keras' decoupled decay, for the torch optimizers whose weight_decay is L2)."""
    params = [leaf(w) for w in W0]
    opt = make_opt(params)
    trajectory = []
    for _ in range(steps):
        grads = gradients([to_numpy(p) for p in params], scale)
        for p, g in zip(params, grads, strict=True):
            p.grad = leaf(g, grad=False)
        if decay is not None:
            with torch.no_grad():
                for p in params:
                    p.mul_(1 - decay[0] * decay[1])
        opt.step()
        trajectory.append([to_numpy(p) for p in params])
    return trajectory


def max_relative_difference(ours, theirs) -> float:
    """max over steps and entries of |ours - theirs| / (1 + |theirs|) (the weights are ~1)."""
    return max(
        float(np.max(np.abs(a - b) / (1.0 + np.abs(b))))
        for a_list, b_list in zip(ours, theirs, strict=True)
        for a, b in zip(a_list, b_list, strict=True)
    )


def assert_same_trajectory(ours, theirs, tol):
    assert len(ours) == len(theirs) == STEPS
    assert max_relative_difference(ours, theirs) <= tol
    assert not np.allclose(ours[-1][0], W0[0], atol=1e-4)  # the weights did move


def keras_eps(torch_adam):
    """torch's Adam or AdamW with Keras' eps. Keras folds the bias corrections into the rate and
    adds eps to sqrt(v); torch adds it to sqrt(v / (1 - b2^t)). Both are the same formula when
    torch's eps is Keras' eps / sqrt(1 - b2^t), which this sets before every step."""

    class KerasEps(torch_adam):
        def __init__(self, params, eps, **kwargs):
            super().__init__(params, eps=eps, **kwargs)
            self.keras_eps, self.t = eps, 0

        def step(self):
            self.t += 1
            for group in self.param_groups:
                group["eps"] = self.keras_eps / math.sqrt(1 - group["betas"][1] ** self.t)
            return super().step()

    return KerasEps


def float64_nadam(params, **kwargs):
    """torch.optim.NAdam with its state created in float64: by itself torch keeps the momentum
    product U_t in its scalar dtype, float32 unless the default dtype is float64 (a ~1e-8
    relative error that is torch's, not the algorithm's)."""
    opt = torch.optim.NAdam(params, **kwargs)
    for p in params:
        opt.state[p].update(
            step=leaf(0.0, grad=False),
            mu_product=leaf(1.0, grad=False),
            exp_avg=leaf(np.zeros(p.shape), grad=False),
            exp_avg_sq=leaf(np.zeros(p.shape), grad=False),
        )
    return opt


# (ours, torch, hand-applied decoupled decay for torch or None, tolerance)
TORCH_CASES = {
    "sgd-weight_decay": (  # without momentum decoupled decay and L2 give the same step
        lambda: optimizers.SGD(0.05, weight_decay=0.1),
        lambda p: torch.optim.SGD(p, lr=0.05, weight_decay=0.1),
        None,
        1e-12,
    ),
    "sgd-momentum-weight_decay": (
        lambda: optimizers.SGD(0.02, momentum=0.9, weight_decay=0.1),
        lambda p: torch.optim.SGD(p, lr=0.02, momentum=0.9),
        (0.02, 0.1),
        1e-12,
    ),
    "sgd-nesterov-weight_decay": (
        lambda: optimizers.SGD(0.02, momentum=0.8, nesterov=True, weight_decay=0.2),
        lambda p: torch.optim.SGD(p, lr=0.02, momentum=0.8, nesterov=True),
        (0.02, 0.2),
        1e-12,
    ),
    # Keras' default eps, with torch's eps adjusted to Keras' placement (keras_eps)
    "adam-keras-defaults": (
        lambda: optimizers.Adam(0.01),
        lambda p: keras_eps(torch.optim.Adam)(p, lr=0.01, eps=1e-7),
        None,
        1e-12,
    ),
    "adam-amsgrad": (
        lambda: optimizers.Adam(0.01, beta_1=0.8, epsilon=1e-6, amsgrad=True),
        lambda p: keras_eps(torch.optim.Adam)(
            p, lr=0.01, betas=(0.8, 0.999), eps=1e-6, amsgrad=True
        ),
        None,
        1e-12,
    ),
    "adam-tiny-eps-unadjusted": (
        lambda: optimizers.Adam(0.01, epsilon=1e-16),
        lambda p: torch.optim.Adam(p, lr=0.01, eps=1e-16),
        None,
        1e-12,
    ),
    "adamw-keras-defaults": (  # weight_decay=0.004
        lambda: optimizers.AdamW(0.01),
        lambda p: keras_eps(torch.optim.AdamW)(p, lr=0.01, weight_decay=0.004, eps=1e-7),
        None,
        1e-12,
    ),
    "adamw": (
        lambda: optimizers.AdamW(0.02, weight_decay=0.3, beta_1=0.5, beta_2=0.99),
        lambda p: keras_eps(torch.optim.AdamW)(
            p, lr=0.02, betas=(0.5, 0.99), weight_decay=0.3, eps=1e-7
        ),
        None,
        1e-12,
    ),
    "adamw-amsgrad": (
        lambda: optimizers.AdamW(0.01, weight_decay=0.1, amsgrad=True),
        lambda p: keras_eps(torch.optim.AdamW)(
            p, lr=0.01, weight_decay=0.1, eps=1e-7, amsgrad=True
        ),
        None,
        1e-12,
    ),
    "adagrad": (
        lambda: optimizers.Adagrad(0.1, epsilon=1e-14),
        lambda p: torch.optim.Adagrad(p, lr=0.1, initial_accumulator_value=0.1, eps=1e-14),
        None,
        1e-12,
    ),
    "adagrad-weight_decay": (
        lambda: optimizers.Adagrad(
            0.1, initial_accumulator_value=0.5, epsilon=1e-14, weight_decay=0.1
        ),
        lambda p: torch.optim.Adagrad(p, lr=0.1, initial_accumulator_value=0.5, eps=1e-14),
        (0.1, 0.1),
        1e-12,
    ),
    # Adadelta: Keras and torch put eps in the same places, so even the defaults agree
    "adadelta-keras-defaults": (
        lambda: optimizers.Adadelta(),
        lambda p: torch.optim.Adadelta(p, lr=0.001, rho=0.95, eps=1e-7),
        None,
        1e-12,
    ),
    "adadelta-paper-rate": (
        lambda: optimizers.Adadelta(1.0, rho=0.9, epsilon=1e-6, weight_decay=0.01),
        lambda p: torch.optim.Adadelta(p, lr=1.0, rho=0.9, eps=1e-6),
        (1.0, 0.01),
        1e-12,
    ),
    "adamax": (
        lambda: optimizers.Adamax(0.02, epsilon=1e-14),
        lambda p: torch.optim.Adamax(p, lr=0.02, eps=1e-14),
        None,
        1e-12,
    ),
    # beta_2 = 0.99 here and in "adamw" (rho = 0.95 for RMSprop): with 0.9 and a tiny eps these
    # methods turn sign-like near the optimum, where two roundings of one formula drift apart
    # exponentially (1e-7 to 1e-5 by step 100), which would test the dynamics, not the code
    "adamax-weight_decay": (
        lambda: optimizers.Adamax(0.02, beta_1=0.7, beta_2=0.99, epsilon=1e-14, weight_decay=0.5),
        lambda p: torch.optim.Adamax(p, lr=0.02, betas=(0.7, 0.99), eps=1e-14),
        (0.02, 0.5),
        1e-12,
    ),
    # Nadam: Keras' momentum schedule is torch's momentum_decay=0.004 and eps sits in the same
    # place, so Keras' default eps agrees too
    "nadam-keras-defaults": (
        lambda: optimizers.Nadam(0.01),
        lambda p: float64_nadam(p, lr=0.01, eps=1e-7, momentum_decay=0.004),
        None,
        1e-12,
    ),
    "nadam-weight_decay": (
        lambda: optimizers.Nadam(0.02, beta_1=0.8, beta_2=0.99, weight_decay=0.2),
        lambda p: float64_nadam(
            p, lr=0.02, betas=(0.8, 0.99), eps=1e-7, weight_decay=0.2, decoupled_weight_decay=True
        ),
        None,
        1e-12,
    ),
    "rmsprop-momentum-centered": (
        lambda: optimizers.RMSprop(0.01, rho=0.95, momentum=0.5, centered=True, epsilon=1e-20),
        lambda p: torch.optim.RMSprop(
            p, lr=0.01, alpha=0.95, momentum=0.5, centered=True, eps=1e-20
        ),
        None,
        1e-12,
    ),
    "rmsprop-weight_decay": (
        lambda: optimizers.RMSprop(0.01, rho=0.95, epsilon=1e-20, weight_decay=0.1),
        lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.95, eps=1e-20),
        (0.01, 0.1),
        1e-12,
    ),
}


@pytest.mark.parametrize("case", list(TORCH_CASES))
def test_100_steps_match_torch(case):
    make_ours, make_torch, decay, tol = TORCH_CASES[case]
    ours = run_ours(make_ours())
    theirs = run_torch(make_torch, decay)
    assert_same_trajectory(ours, theirs, tol)


# ----- NumPy transcriptions (Lion; Keras' eps placement with Keras' default eps) ----------------
def lion_paper(lr, b1, b2, wd, steps=STEPS):
    """Chen et al. 2023, Algorithm 2 (decoupled weight decay)."""
    w = [a.copy() for a in W0]
    m = [np.zeros_like(a) for a in W0]
    out = []
    for _ in range(steps):
        for i, g in enumerate(gradients(w)):
            c = b1 * m[i] + (1 - b1) * g
            w[i] = w[i] - lr * (np.sign(c) + wd * w[i])
            m[i] = b2 * m[i] + (1 - b2) * g
        out.append([a.copy() for a in w])
    return out


@pytest.mark.parametrize("b1, b2, wd", [(0.9, 0.99, 0.0), (0.95, 0.98, 1.0), (1.0, 0.9, 0.1)])
def test_lion_follows_the_paper(b1, b2, wd):
    ours = run_ours(optimizers.Lion(0.003, beta_1=b1, beta_2=b2, weight_decay=wd or None))
    assert_same_trajectory(ours, lion_paper(0.003, b1, b2, wd), 1e-12)


def test_lion_moves_every_entry_by_exactly_lr():
    opt = optimizers.Lion(0.25)
    w = [np.array([1.0, 1.0, 1.0])]
    opt.apply(w, [np.array([3.0, -1e-9, 0.0])])
    np.testing.assert_array_equal(w[0], [0.75, 1.25, 1.0])


def keras_adagrad(lr, init, eps, scale):
    w, acc, out = [a.copy() for a in W0], [np.full_like(a, init) for a in W0], []
    for _ in range(STEPS):
        for i, g in enumerate(gradients(w, scale)):
            acc[i] = acc[i] + g * g
            w[i] = w[i] - lr * g / np.sqrt(acc[i] + eps)
        out.append([a.copy() for a in w])
    return out


def keras_adamax(lr, b1, b2, eps, scale):
    w, m, u, out = [a.copy() for a in W0], [0 * a for a in W0], [0 * a for a in W0], []
    for t in range(1, STEPS + 1):
        for i, g in enumerate(gradients(w, scale)):
            m[i] = b1 * m[i] + (1 - b1) * g
            u[i] = np.maximum(b2 * u[i], np.abs(g))
            w[i] = w[i] - lr * m[i] / ((1 - b1**t) * (u[i] + eps))
        out.append([a.copy() for a in w])
    return out


def keras_rmsprop(lr, rho, mu, eps, scale):
    w, v, a, p, out = [x.copy() for x in W0], [0 * x for x in W0], [0 * x for x in W0], None, []
    p = [0 * x for x in W0]
    for _ in range(STEPS):
        for i, g in enumerate(gradients(w, scale)):
            v[i] = rho * v[i] + (1 - rho) * g * g
            a[i] = rho * a[i] + (1 - rho) * g
            p[i] = mu * p[i] + lr * g / np.sqrt(v[i] - a[i] ** 2 + eps)
            w[i] = w[i] - p[i]
        out.append([x.copy() for x in w])
    return out


KERAS_DEFAULT_EPS = {
    "adagrad": (
        lambda: optimizers.Adagrad(0.05, initial_accumulator_value=1e-6),
        lambda scale: keras_adagrad(0.05, 1e-6, 1e-7, scale),
        lambda p: torch.optim.Adagrad(p, lr=0.05, initial_accumulator_value=1e-6, eps=1e-7),
    ),
    "adamax": (
        lambda: optimizers.Adamax(0.01),
        lambda scale: keras_adamax(0.01, 0.9, 0.999, 1e-7, scale),
        lambda p: torch.optim.Adamax(p, lr=0.01, eps=1e-7),
    ),
    "rmsprop-centered-momentum": (
        lambda: optimizers.RMSprop(0.01, momentum=0.9, centered=True),
        lambda scale: keras_rmsprop(0.01, 0.9, 0.9, 1e-7, scale),
        lambda p: torch.optim.RMSprop(p, lr=0.01, momentum=0.9, centered=True, eps=1e-7),
    ),
}


@pytest.mark.parametrize("case", list(KERAS_DEFAULT_EPS))
def test_default_eps_follows_keras_not_torch(case):
    """With gradients ~1e-4 Keras' default eps = 1e-7 matters; the trajectory is Keras'."""
    make_ours, keras_formula, make_torch = KERAS_DEFAULT_EPS[case]
    ours = run_ours(make_ours(), scale=1e-4)
    assert_same_trajectory(ours, keras_formula(1e-4), 1e-10)
    theirs = run_torch(make_torch, scale=1e-4)
    assert max_relative_difference(ours, theirs) > 1e-6  # the convention shows


# ----- gradient clipping against torch.nn.utils -------------------------------------------------
def test_adam_with_global_clipnorm_matches_torch_clip_grad_norm_for_100_steps():
    """torch divides by (norm + 1e-6), Keras by norm: agreement to ~1e-6 / norm."""

    class ClippedAdam(torch.optim.Adam):
        def step(self):
            params = [p for group in self.param_groups for p in group["params"]]
            torch.nn.utils.clip_grad_norm_(params, max_norm=0.5)
            return super().step()

    ours = run_ours(optimizers.Adam(0.01, epsilon=1e-16, global_clipnorm=0.5), scale=10.0)
    theirs = run_torch(lambda p: ClippedAdam(p, lr=0.01, eps=1e-16), scale=10.0)
    assert_same_trajectory(ours, theirs, 1e-5)
