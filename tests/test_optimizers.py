"""Optimizers against torch.optim (same weights, same gradient sequence, several steps) and against
plain NumPy transcriptions of Keras' formulas where Keras and torch differ (where eps enters).
torch's parameters are float64 leaves from tests/torch_oracle.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from slidenet import optimizers
from torch_oracle import leaf, to_numpy

SHAPES = [(3, 4), (4,), (2, 1, 3)]
STEPS = 6


def weights_and_grads(dtype=np.float64, scale=1.0, seed=0):
    rng = np.random.default_rng(seed)
    weights = [rng.normal(size=s).astype(dtype) for s in SHAPES]
    grads = [[(rng.normal(size=s) * scale).astype(dtype) for s in SHAPES] for _ in range(STEPS)]
    return weights, grads


def run_ours(opt, weights, grad_seq):
    weights = [w.copy() for w in weights]
    trajectory = []
    for grads in grad_seq:
        opt.apply(weights, grads)
        trajectory.append([w.copy() for w in weights])
    return trajectory


def run_torch(make_opt, weights, grad_seq):
    params = [leaf(w) for w in weights]
    opt = make_opt(params)
    trajectory = []
    for grads in grad_seq:
        for p, g in zip(params, grads, strict=True):
            p.grad = leaf(g, grad=False)
        opt.step()
        trajectory.append([to_numpy(p) for p in params])
    return trajectory


def assert_same_trajectory(ours, theirs, rtol=1e-10, atol=1e-12):
    assert len(ours) == len(theirs) == STEPS
    for step, (a_list, b_list) in enumerate(zip(ours, theirs, strict=True)):
        for a, b in zip(a_list, b_list, strict=True):
            np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=f"step {step + 1}")


TORCH_CASES = {
    "sgd": (
        lambda: optimizers.SGD(learning_rate=0.1),
        lambda p: torch.optim.SGD(p, lr=0.1),
    ),
    "sgd-momentum": (
        lambda: optimizers.SGD(learning_rate=0.05, momentum=0.9),
        lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9),
    ),
    "sgd-nesterov": (
        lambda: optimizers.SGD(learning_rate=0.05, momentum=0.8, nesterov=True),
        lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.8, nesterov=True),
    ),
    # eps tiny: Keras' eps (added to sqrt(v) after folding the bias correction into lr) and torch's
    # (added to sqrt(v_hat)) then make no measurable difference
    "adam": (
        lambda: optimizers.Adam(learning_rate=0.01, epsilon=1e-12),
        lambda p: torch.optim.Adam(p, lr=0.01, eps=1e-12),
    ),
    "adam-betas": (
        lambda: optimizers.Adam(learning_rate=0.02, beta_1=0.5, beta_2=0.9, epsilon=1e-12),
        lambda p: torch.optim.Adam(p, lr=0.02, betas=(0.5, 0.9), eps=1e-12),
    ),
    # Keras: sqrt(v + eps), torch: sqrt(v) + eps; with eps tiny they agree
    "rmsprop": (
        lambda: optimizers.RMSprop(learning_rate=0.01, epsilon=1e-14),
        lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.9, eps=1e-14),
    ),
    "rmsprop-rho": (
        lambda: optimizers.RMSprop(learning_rate=0.003, rho=0.5, epsilon=1e-14),
        lambda p: torch.optim.RMSprop(p, lr=0.003, alpha=0.5, eps=1e-14),
    ),
}


@pytest.mark.parametrize("case", list(TORCH_CASES))
def test_matches_torch(case):
    make_ours, make_torch = TORCH_CASES[case]
    weights, grads = weights_and_grads()
    ours = run_ours(make_ours(), weights, grads)
    theirs = run_torch(make_torch, weights, grads)
    assert_same_trajectory(ours, theirs)
    assert not np.allclose(ours[-1][0], weights[0])  # the weights did move


# ----- NumPy transcriptions of the Keras formulas ------------------------------------------------
def keras_sgd(weights, grad_seq, lr, momentum=0.0, nesterov=False):
    w = [a.copy() for a in weights]
    v = [np.zeros_like(a) for a in weights]
    out = []
    for grads in grad_seq:
        for i, g in enumerate(grads):
            v[i] = momentum * v[i] - lr * g
            if nesterov:
                w[i] = w[i] + momentum * v[i] - lr * g
            elif momentum:
                w[i] = w[i] + v[i]
            else:
                w[i] = w[i] - lr * g
        out.append([a.copy() for a in w])
    return out


def keras_adam(weights, grad_seq, lr=0.001, b1=0.9, b2=0.999, eps=1e-7):
    w = [a.copy() for a in weights]
    m = [np.zeros_like(a) for a in weights]
    v = [np.zeros_like(a) for a in weights]
    out = []
    for t, grads in enumerate(grad_seq, start=1):
        lr_t = lr * np.sqrt(1 - b2**t) / (1 - b1**t)
        for i, g in enumerate(grads):
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g * g
            w[i] = w[i] - lr_t * m[i] / (np.sqrt(v[i]) + eps)
        out.append([a.copy() for a in w])
    return out


def keras_rmsprop(weights, grad_seq, lr=0.001, rho=0.9, eps=1e-7):
    w = [a.copy() for a in weights]
    v = [np.zeros_like(a) for a in weights]
    out = []
    for grads in grad_seq:
        for i, g in enumerate(grads):
            v[i] = rho * v[i] + (1 - rho) * g * g
            w[i] = w[i] - lr * g / np.sqrt(v[i] + eps)
        out.append([a.copy() for a in w])
    return out


@pytest.mark.parametrize("scale", [1.0, 1e-4], ids=["grads~1", "grads~1e-4"])
def test_adam_default_eps_follows_keras_formula(scale):
    weights, grads = weights_and_grads(scale=scale)
    ours = run_ours(optimizers.Adam(), weights, grads)
    assert_same_trajectory(ours, keras_adam(weights, grads))


def test_adam_default_eps_is_keras_not_torch_where_eps_matters():
    """With gradients ~1e-6, where eps enters shows: we follow Keras, not torch."""
    weights, grads = weights_and_grads(scale=1e-6)
    ours = run_ours(optimizers.Adam(learning_rate=0.1), weights, grads)
    keras = keras_adam(weights, grads, lr=0.1)
    theirs = run_torch(lambda p: torch.optim.Adam(p, lr=0.1, eps=1e-7), weights, grads)
    assert_same_trajectory(ours, keras)
    step_ours = ours[-1][0] - weights[0]
    step_torch = theirs[-1][0] - weights[0]
    assert np.abs(step_ours - step_torch).max() > 1e-3 * np.abs(step_torch).max()


@pytest.mark.parametrize("scale", [1.0, 1e-4], ids=["grads~1", "grads~1e-4"])
def test_rmsprop_default_eps_follows_keras_formula(scale):
    weights, grads = weights_and_grads(scale=scale)
    ours = run_ours(optimizers.RMSprop(learning_rate=0.01), weights, grads)
    assert_same_trajectory(ours, keras_rmsprop(weights, grads, lr=0.01))


def test_rmsprop_eps_inside_the_sqrt_unlike_torch():
    weights, grads = weights_and_grads(scale=1e-4)
    ours = run_ours(optimizers.RMSprop(learning_rate=0.01), weights, grads)
    theirs = run_torch(
        lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.9, eps=1e-7), weights, grads
    )
    step_ours = ours[0][0] - weights[0]
    step_torch = theirs[0][0] - weights[0]
    assert np.abs(step_ours - step_torch).max() > 1e-2 * np.abs(step_torch).max()


@pytest.mark.parametrize(
    "kwargs", [{}, {"momentum": 0.9}, {"momentum": 0.7, "nesterov": True}], ids=str
)
def test_sgd_follows_keras_formula(kwargs):
    weights, grads = weights_and_grads()
    ours = run_ours(optimizers.SGD(learning_rate=0.03, **kwargs), weights, grads)
    assert_same_trajectory(ours, keras_sgd(weights, grads, 0.03, **kwargs))


def test_nesterov_differs_from_plain_momentum():
    weights, grads = weights_and_grads()
    plain = run_ours(optimizers.SGD(0.05, momentum=0.9), weights, grads)
    nesterov = run_ours(optimizers.SGD(0.05, momentum=0.9, nesterov=True), weights, grads)
    assert not np.allclose(plain[-1][0], nesterov[-1][0])


# ----- dtype, in-place update, learning rate changes ---------------------------------------------
@pytest.mark.parametrize(
    "make",
    [
        lambda: optimizers.SGD(0.1),
        lambda: optimizers.SGD(0.1, momentum=0.9, nesterov=True),
        lambda: optimizers.Adam(),
        lambda: optimizers.RMSprop(),
    ],
    ids=["sgd", "nesterov", "adam", "rmsprop"],
)
def test_float32_weights_stay_float32_and_are_updated_in_place(make):
    opt = make()
    weights, grads = weights_and_grads(np.float32)
    live = [w.copy() for w in weights]
    ids = [id(w) for w in live]
    for g in grads:
        opt.apply(live, [gi.astype(np.float64) for gi in g])  # float64 gradients are cast
    assert [id(w) for w in live] == ids
    for w, w0 in zip(live, weights, strict=True):
        assert w.dtype == np.float32
        assert not np.allclose(w, w0)
    for v in opt.variables():
        assert v.dtype == np.float32
    # float32 results agree with the float64 run
    ref = run_ours(
        make(),
        [w.astype(np.float64) for w in weights],
        [[gi.astype(np.float64) for gi in g] for g in grads],
    )
    for a, b in zip(live, ref[-1], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "cls", [optimizers.SGD, optimizers.Adam, optimizers.RMSprop], ids=lambda c: c.__name__
)
def test_learning_rate_attribute_changes_take_effect(cls):
    weights, grads = weights_and_grads()
    a, b = cls(learning_rate=0.01), cls(learning_rate=0.01)
    wa, wb = [w.copy() for w in weights], [w.copy() for w in weights]
    a.apply(wa, grads[0])
    b.apply(wb, grads[0])
    before = [w.copy() for w in wa]
    b.learning_rate = 0.0025
    a.apply(wa, grads[1])
    b.apply(wb, grads[1])
    for w0, w1, w2 in zip(before, wa, wb, strict=True):
        np.testing.assert_allclose(w2 - w0, (w1 - w0) / 4, rtol=1e-9, atol=1e-15)


def test_sgd_step_is_lr_times_gradient():
    opt = optimizers.SGD(learning_rate=0.5)
    w = [np.array([1.0, 2.0])]
    opt.apply(w, [np.array([0.2, -0.4])])
    np.testing.assert_allclose(w[0], [0.9, 2.2])
    assert opt.iterations == 1


# ----- arguments and names -----------------------------------------------------------------------
def test_numpy_scalar_learning_rate_is_accepted():
    opt = optimizers.Adam(learning_rate=np.float32(0.5))
    assert opt.learning_rate == 0.5 and type(opt.learning_rate) is float


def test_sgd_momentum_out_of_range():
    with pytest.raises(ValueError, match=r"momentum must be in \[0, 1\)"):
        optimizers.SGD(momentum=1.0)


@pytest.mark.parametrize(
    "name, cls",
    [("sgd", optimizers.SGD), ("Adam", optimizers.Adam), ("RMSPROP", optimizers.RMSprop)],
)
def test_get_by_name(name, cls):
    opt = optimizers.get(name)
    assert type(opt) is cls
    assert optimizers.get(opt) is opt


@pytest.mark.parametrize("typo, meant", [("addam", "adam"), ("adm", "adam"), ("lino", "lion")])
def test_unknown_optimizer_name_suggests_the_closest(typo, meant):
    with pytest.raises(ValueError, match=rf"Unknown optimizer '{typo}'\. Did you mean '{meant}'\?"):
        optimizers.get(typo)


def test_optimizer_of_the_wrong_type():
    with pytest.raises(TypeError, match="optimizer must be a name or an Optimizer"):
        optimizers.get(3)


@pytest.mark.parametrize(
    "opt",
    [
        optimizers.SGD(0.2, momentum=0.5, nesterov=True),
        optimizers.Adam(0.003, beta_1=0.8, beta_2=0.99, epsilon=1e-6),
        optimizers.RMSprop(0.004, rho=0.8, epsilon=1e-5),
    ],
    ids=lambda o: type(o).__name__,
)
def test_serialize_round_trip(opt):
    clone = optimizers.deserialize(optimizers.serialize(opt))
    assert type(clone) is type(opt)
    assert clone.get_config() == opt.get_config()


# ----- state: variables() / set_variables() ------------------------------------------------------
@pytest.mark.parametrize(
    "make, n_slots",
    [
        (lambda: optimizers.SGD(0.1, momentum=0.9), 1),
        (lambda: optimizers.Adam(0.01), 2),
        (lambda: optimizers.RMSprop(0.01), 1),
        (lambda: optimizers.SGD(0.1), 0),
    ],
    ids=["momentum", "adam", "rmsprop", "sgd"],
)
def test_variables_round_trip(make, n_slots):
    weights, grads = weights_and_grads()
    a = make()
    wa = [w.copy() for w in weights]
    assert a.variables() == []
    for g in grads[:3]:
        a.apply(wa, g)
    state = [v.copy() for v in a.variables()]
    assert len(state) == n_slots * len(weights)
    for v, w in zip(state, wa * n_slots, strict=True):
        assert v.shape == w.shape

    b = make()
    b.set_variables(state, n_weights=len(weights))
    b.iterations = a.iterations
    wb = [w.copy() for w in wa]
    for g in grads[3:]:
        a.apply(wa, g)
        b.apply(wb, g)
    for x, y in zip(wa, wb, strict=True):
        np.testing.assert_array_equal(x, y)


def test_variables_round_trip_is_needed_for_adam():
    """Without the restored state the continuation differs (the round trip test can fail)."""
    weights, grads = weights_and_grads()
    a, fresh = optimizers.Adam(0.01), optimizers.Adam(0.01)
    wa = [w.copy() for w in weights]
    for g in grads[:3]:
        a.apply(wa, g)
    wb = [w.copy() for w in wa]
    fresh.iterations = a.iterations
    a.apply(wa, grads[3])
    fresh.apply(wb, grads[3])
    assert not np.allclose(wa[0], wb[0])


def test_set_variables_wrong_count():
    opt = optimizers.Adam()
    with pytest.raises(ValueError, match=r"Adam: saved state has 3 arrays, expected 4"):
        opt.set_variables([np.zeros(2)] * 3, n_weights=2)


def test_set_variables_empty_resets_state():
    weights, grads = weights_and_grads()
    opt = optimizers.RMSprop()
    opt.apply([w.copy() for w in weights], grads[0])
    opt.set_variables([], n_weights=len(weights))
    assert opt.variables() == []
