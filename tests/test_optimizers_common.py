"""What every optimizer shares: gradient clipping (against torch.nn.utils), decoupled weight decay,
argument checks, names, configs, float32, and the state that lets a run resume exactly."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from slidenet import optimizers
from torch_oracle import leaf, to_numpy

SHAPES = [(3, 4), (4,), (2, 1, 3)]

ALL = {
    "sgd": lambda **kw: optimizers.SGD(0.05, **kw),
    "momentum": lambda **kw: optimizers.SGD(0.05, momentum=0.9, nesterov=True, **kw),
    "adam": lambda **kw: optimizers.Adam(0.01, **kw),
    "amsgrad": lambda **kw: optimizers.Adam(0.01, amsgrad=True, **kw),
    "adamw": lambda **kw: optimizers.AdamW(0.01, **kw),
    "adamax": lambda **kw: optimizers.Adamax(0.01, **kw),
    "nadam": lambda **kw: optimizers.Nadam(0.01, **kw),
    "rmsprop": lambda **kw: optimizers.RMSprop(0.01, **kw),
    "rmsprop-centered": lambda **kw: optimizers.RMSprop(0.01, momentum=0.5, centered=True, **kw),
    "adagrad": lambda **kw: optimizers.Adagrad(0.1, **kw),
    "adadelta": lambda **kw: optimizers.Adadelta(1.0, **kw),
    "lion": lambda **kw: optimizers.Lion(0.001, **kw),
}
CLASSES = [
    optimizers.SGD,
    optimizers.Adam,
    optimizers.AdamW,
    optimizers.Adamax,
    optimizers.Nadam,
    optimizers.RMSprop,
    optimizers.Adagrad,
    optimizers.Adadelta,
    optimizers.Lion,
]


def weights_and_grads(dtype=np.float64, scale=1.0, steps=6, seed=0):
    rng = np.random.default_rng(seed)
    weights = [rng.normal(size=s).astype(dtype) for s in SHAPES]
    grads = [[(rng.normal(size=s) * scale).astype(dtype) for s in SHAPES] for _ in range(steps)]
    return weights, grads


def applied_gradients(opt_kwargs, grads):
    """The gradients an SGD(learning_rate=1) step with these clip settings actually applied."""
    weights = [np.zeros_like(g) for g in grads]
    optimizers.SGD(1.0, **opt_kwargs).apply(weights, grads)
    return [-w for w in weights]


# ----- gradient clipping -------------------------------------------------------------------------
def test_clipnorm_clips_each_gradient_like_clip_grad_norm_per_tensor():
    _, [grads] = weights_and_grads(scale=2.0, steps=1)
    grads[1] = grads[1] * 0.01  # this one is under the norm: left as it is
    ours = applied_gradients({"clipnorm": 1.5}, grads)
    for g, o in zip(grads, ours, strict=True):
        p = leaf(np.zeros_like(g))
        p.grad = leaf(g, grad=False)
        torch.nn.utils.clip_grad_norm_([p], max_norm=1.5)
        # torch divides by (norm + 1e-6), Keras by norm
        np.testing.assert_allclose(o, to_numpy(p.grad), rtol=1e-6)
        assert np.linalg.norm(o) == pytest.approx(min(np.linalg.norm(g), 1.5), rel=1e-12)
    np.testing.assert_array_equal(ours[1], grads[1])


def test_global_clipnorm_scales_all_gradients_together_like_clip_grad_norm():
    _, [grads] = weights_and_grads(scale=2.0, steps=1)
    ours = applied_gradients({"global_clipnorm": 3.0}, grads)
    params = [leaf(np.zeros_like(g)) for g in grads]
    for p, g in zip(params, grads, strict=True):
        p.grad = leaf(g, grad=False)
    torch.nn.utils.clip_grad_norm_(params, max_norm=3.0)
    for o, p in zip(ours, params, strict=True):
        np.testing.assert_allclose(o, to_numpy(p.grad), rtol=1e-6)
    total = np.sqrt(sum(np.sum(o * o) for o in ours))
    assert total == pytest.approx(3.0, rel=1e-12)
    # one common factor, so the directions are kept
    ratios = np.concatenate([(o / g).ravel() for o, g in zip(ours, grads, strict=True)])
    np.testing.assert_allclose(ratios, ratios[0], rtol=1e-12)


def test_clipvalue_is_clip_grad_value():
    _, [grads] = weights_and_grads(scale=2.0, steps=1)
    ours = applied_gradients({"clipvalue": 0.7}, grads)
    for g, o in zip(grads, ours, strict=True):
        p = leaf(np.zeros_like(g))
        p.grad = leaf(g, grad=False)
        torch.nn.utils.clip_grad_value_([p], clip_value=0.7)
        np.testing.assert_array_equal(o, to_numpy(p.grad))


@pytest.mark.parametrize("clip", ["clipnorm", "clipvalue", "global_clipnorm"])
def test_clipping_leaves_small_gradients_and_the_callers_arrays_alone(clip):
    _, [grads] = weights_and_grads(scale=1e-3, steps=1)
    copies = [g.copy() for g in grads]
    np.testing.assert_array_equal(
        np.concatenate([a.ravel() for a in applied_gradients({clip: 10.0}, grads)]),
        np.concatenate([g.ravel() for g in grads]),
    )
    big = [g * 1e6 for g in grads]
    big_copies = [g.copy() for g in big]
    applied_gradients({clip: 1.0}, big)
    for a, b in zip([*grads, *big], [*copies, *big_copies], strict=True):
        np.testing.assert_array_equal(a, b)


def test_global_clipnorm_of_an_infinite_gradient_gives_nan_not_zeros():
    """As in Keras: a non-finite norm shows up as NaN weights, never as a silent zero step."""
    grads = [np.array([np.inf, 1.0]), np.array([2.0])]
    with np.errstate(invalid="ignore"):
        applied = applied_gradients({"global_clipnorm": 1.0}, grads)
    assert all(np.isnan(a).all() for a in applied)


def test_clipping_comes_before_the_update():
    """Adam's first step is lr * sign(g) whatever the scale, but with clipvalue the clipped
    gradient enters m and v: after two steps the runs differ."""
    weights, grads = weights_and_grads(scale=5.0)
    a, b = [w.copy() for w in weights], [w.copy() for w in weights]
    plain, clipped = optimizers.Adam(0.1), optimizers.Adam(0.1, clipvalue=0.5)
    for g in grads[:2]:
        plain.apply(a, g)
        clipped.apply(b, g)
    assert not np.allclose(a[0], b[0])


# ----- decoupled weight decay --------------------------------------------------------------------
@pytest.mark.parametrize("name", list(ALL))
def test_weight_decay_with_zero_gradients_shrinks_weights_geometrically(name):
    """w -= lr * wd * w: with zero gradients the optimizer's own update is zero, so the weights
    shrink by (1 - lr * wd) per step, whatever the optimizer's state (decoupled decay)."""
    opt = ALL[name](weight_decay=0.5)
    lr = opt.learning_rate
    weights, _ = weights_and_grads()
    live = [w.copy() for w in weights]
    for _ in range(5):
        opt.apply(live, [np.zeros_like(w) for w in live])
    for w, w0 in zip(live, weights, strict=True):
        np.testing.assert_allclose(w, w0 * (1 - lr * 0.5) ** 5, rtol=1e-13)


def test_adamw_decay_differs_from_adam_on_an_l2_loss():
    """L2 in the loss goes through Adam's normalisation; AdamW's decay does not."""
    weights, grads = weights_and_grads()
    wd = 0.1
    a, b = [w.copy() for w in weights], [w.copy() for w in weights]
    adamw, adam = optimizers.AdamW(0.01, weight_decay=wd), optimizers.Adam(0.01)
    for g in grads:
        adamw.apply(a, g)
        adam.apply(b, [gi + wd * wi for gi, wi in zip(g, b, strict=True)])
    assert not np.allclose(a[0], b[0], rtol=1e-4)


# ----- arguments ---------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
@pytest.mark.parametrize("lr", [0, -0.1, "0.01", None, float("nan"), float("inf"), True])
def test_invalid_learning_rate(cls, lr):
    with pytest.raises(ValueError, match=cls.__name__ + r": learning_rate must be .*> 0, got"):
        cls(learning_rate=lr)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"weight_decay": -0.1}, r"weight_decay must be a finite number >= 0, got -0\.1"),
        ({"weight_decay": float("nan")}, r"weight_decay must be a finite number >= 0, got nan"),
        ({"clipnorm": 0}, r"clipnorm must be a finite number > 0, got 0\."),
        ({"clipvalue": -1.0}, r"clipvalue must be a finite number > 0, got -1\.0"),
        ({"global_clipnorm": float("inf")}, r"global_clipnorm must be a finite number > 0"),
        (
            {"clipnorm": 1.0, "clipvalue": 0.5},
            r"only one of clipnorm, clipvalue and global_clipnorm can be set, got clipnorm=1\.0, "
            r"clipvalue=0\.5, global_clipnorm=None",
        ),
        ({"name": 3}, r"name must be a string, got 3"),
    ],
    ids=["negative-decay", "nan-decay", "clipnorm-0", "clipvalue<0", "inf", "two-clips", "name"],
)
def test_invalid_shared_arguments(cls, kwargs, message):
    with pytest.raises(ValueError, match=f"{cls.__name__}: {message}"):
        cls(**kwargs)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: optimizers.AdamW(weight_decay=None), r"AdamW: weight_decay must be .* got None"),
        (lambda: optimizers.Adam(beta_1=1.0), r"Adam: beta_1 must be in \[0, 1\), got 1\.0"),
        (lambda: optimizers.Adam(beta_2=-0.1), r"Adam: beta_2 must be in \[0, 1\)"),
        (lambda: optimizers.Adam(epsilon=0), r"Adam: epsilon must be a finite number > 0, got 0"),
        (lambda: optimizers.Adam(amsgrad="yes"), r"Adam: amsgrad must be True or False"),
        (lambda: optimizers.Nadam(beta_1=1.5), r"Nadam: beta_1 must be in \[0, 1\)"),
        (lambda: optimizers.Adamax(epsilon=-1e-7), r"Adamax: epsilon must be .* > 0"),
        (lambda: optimizers.Lion(beta_1=0), r"Lion: beta_1 must be in \(0, 1\], got 0"),
        (lambda: optimizers.Lion(beta_2=1), r"Lion: beta_2 must be in \[0, 1\), got 1"),
        (lambda: optimizers.Adagrad(initial_accumulator_value=-1), r"Adagrad: initial_accum"),
        (lambda: optimizers.Adadelta(rho=1.0), r"Adadelta: rho must be in \[0, 1\)"),
        (lambda: optimizers.RMSprop(momentum=1.0), r"RMSprop: momentum must be in \[0, 1\)"),
        (lambda: optimizers.RMSprop(centered=1), r"RMSprop: centered must be True or False"),
        (lambda: optimizers.SGD(momentum=-0.5), r"SGD: momentum must be in \[0, 1\)"),
        (lambda: optimizers.SGD(nesterov=None), r"SGD: nesterov must be True or False"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_invalid_optimizer_arguments(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_lion_beta_1_may_be_1():
    assert optimizers.Lion(beta_1=1.0).beta_1 == 1.0


# ----- Keras' defaults, names, configs -----------------------------------------------------------
@pytest.mark.parametrize(
    "cls, defaults",
    [
        (optimizers.AdamW, {"learning_rate": 0.001, "weight_decay": 0.004, "epsilon": 1e-7}),
        (optimizers.Adagrad, {"learning_rate": 0.001, "initial_accumulator_value": 0.1}),
        (optimizers.Adadelta, {"learning_rate": 0.001, "rho": 0.95, "epsilon": 1e-7}),
        (optimizers.Adamax, {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999}),
        (optimizers.Nadam, {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999}),
        (optimizers.Lion, {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.99}),
        (optimizers.SGD, {"learning_rate": 0.01, "momentum": 0.0, "weight_decay": None}),
        (optimizers.RMSprop, {"rho": 0.9, "momentum": 0.0, "centered": False}),
    ],
    ids=lambda v: v.__name__ if isinstance(v, type) else "",
)
def test_keras_defaults(cls, defaults):
    config = cls().get_config()
    assert {k: config[k] for k in defaults} == defaults
    assert config["clipnorm"] is config["clipvalue"] is config["global_clipnorm"] is None


@pytest.mark.parametrize(
    "name, cls",
    [
        ("adamw", optimizers.AdamW),
        ("Adagrad", optimizers.Adagrad),
        ("adadelta", optimizers.Adadelta),
        ("ADAMAX", optimizers.Adamax),
        ("nadam", optimizers.Nadam),
        ("lion", optimizers.Lion),
    ],
)
def test_get_by_name(name, cls):
    opt = optimizers.get(name)
    assert type(opt) is cls
    assert opt.name == cls.__name__.lower()


@pytest.mark.parametrize("name", list(ALL))
def test_serialize_round_trip_through_json(name):
    opt = ALL[name](weight_decay=0.01, clipnorm=2.0)
    text = json.dumps(optimizers.serialize(opt))
    clone = optimizers.deserialize(json.loads(text))
    assert type(clone) is type(opt)
    assert clone.get_config() == opt.get_config()
    assert optimizers.get(json.loads(text)).get_config() == opt.get_config()


# ----- dtype and state ---------------------------------------------------------------------------
def run(opt, weights, grad_seq):
    weights = [w.copy() for w in weights]
    for g in grad_seq:
        opt.apply(weights, g)
    return weights


@pytest.mark.parametrize("name", list(ALL))
def test_float32_stays_float32_in_place_and_agrees_with_float64(name):
    opt = ALL[name](weight_decay=0.1, global_clipnorm=5.0)
    weights, grads = weights_and_grads(np.float32)
    live = [w.copy() for w in weights]
    ids = [id(w) for w in live]
    for g in grads:
        opt.apply(live, [gi.astype(np.float64) for gi in g])  # float64 gradients are cast
    assert [id(w) for w in live] == ids
    assert all(w.dtype == np.float32 for w in live)
    assert all(v.dtype == np.float32 for v in opt.variables())
    ref = run(
        ALL[name](weight_decay=0.1, global_clipnorm=5.0),
        [w.astype(np.float64) for w in weights],
        [[gi.astype(np.float64) for gi in g] for g in grads],
    )
    for a, b, w0 in zip(live, ref, weights, strict=True):
        assert not np.allclose(a, w0)
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", list(ALL))
def test_state_round_trip_resumes_bit_for_bit(name):
    """variables() + iterations are all a fresh optimizer needs (Nadam recomputes its momentum
    product from iterations)."""
    weights, grads = weights_and_grads(steps=8)
    a = ALL[name](weight_decay=0.01)
    wa = run(a, weights, grads[:4])
    b = ALL[name](weight_decay=0.01)
    b.set_variables([v.copy() for v in a.variables()], n_weights=len(weights))
    b.iterations = a.iterations
    assert len(a.variables()) == len(a.slot_names) * len(weights)
    wb = [w.copy() for w in wa]
    for g in grads[4:]:
        a.apply(wa, g)
        b.apply(wb, g)
    for x, y in zip(wa, wb, strict=True):
        np.testing.assert_array_equal(x, y)
    for x, y in zip(a.variables(), b.variables(), strict=True):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("name", ["adagrad", "adadelta", "adamax", "nadam", "lion", "amsgrad"])
def test_without_the_state_the_continuation_differs(name):
    weights, grads = weights_and_grads(steps=5)
    a = ALL[name]()
    wa = run(a, weights, grads[:4])
    fresh = ALL[name]()
    fresh.iterations = a.iterations
    wb = [w.copy() for w in wa]
    a.apply(wa, grads[4])
    fresh.apply(wb, grads[4])
    assert not np.allclose(wa[0], wb[0])


def test_adagrad_state_starts_at_the_initial_accumulator_value():
    opt = optimizers.Adagrad(0.1, initial_accumulator_value=0.25)
    w = [np.ones(3)]
    opt.apply(w, [np.array([0.0, 1.0, 2.0])])
    np.testing.assert_array_equal(opt.variables()[0], [0.25, 1.25, 4.25])
