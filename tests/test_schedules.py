"""Learning rate schedules: against torch.optim.lr_scheduler where torch has the same schedule,
against the closed-form formulas of the Keras documentation otherwise; configs, errors; and the
optimizers that evaluate them at ``iterations`` before every step."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

import slidenet as keras
from slidenet import optimizers
from slidenet.optimizers import schedules
from torch_oracle import leaf, to_numpy

LR0 = 0.1


def torch_rates(make_scheduler, steps, lr=LR0):
    """The learning rate torch uses at steps 0, 1, ..., steps - 1."""
    opt = torch.optim.SGD([leaf(np.zeros(1))], lr=lr)
    scheduler = make_scheduler(opt)
    rates = []
    for _ in range(steps):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()  # no gradient: nothing moves, but torch wants the step before the scheduler's
        scheduler.step()
    return np.array(rates)


def ours(schedule, steps):
    rates = np.array([schedule(t) for t in range(steps)])
    assert all(type(schedule(t)) is float for t in (0, steps // 2))
    np.testing.assert_array_equal(schedule(np.arange(steps)), rates)  # arrays of steps too
    return rates


TORCH_SCHEDULES = {
    "ExponentialLR": (
        schedules.ExponentialDecay(LR0, decay_steps=1, decay_rate=0.95),
        lambda opt: torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.95),
        100,
    ),
    "StepLR=staircase": (
        schedules.ExponentialDecay(LR0, decay_steps=7, decay_rate=0.5, staircase=True),
        lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=7, gamma=0.5),
        100,
    ),
    # Keras' boundary b: values[k] up to and including step b, so torch's milestone is b + 1
    "MultiStepLR=PiecewiseConstant": (
        schedules.PiecewiseConstantDecay([9, 29, 59], [LR0, LR0 * 0.3, LR0 * 0.09, LR0 * 0.027]),
        lambda opt: torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[10, 30, 60], gamma=0.3),
        100,
    ),
    "CosineAnnealingLR": (
        schedules.CosineDecay(LR0, decay_steps=100),
        lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=100),
        101,
    ),
    "CosineAnnealingLR-eta_min=alpha*lr0": (
        schedules.CosineDecay(LR0, decay_steps=60, alpha=0.2),
        lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=60, eta_min=0.2 * LR0),
        61,
    ),
    "PolynomialLR": (
        schedules.PolynomialDecay(LR0, decay_steps=80, end_learning_rate=0.0, power=2.0),
        lambda opt: torch.optim.lr_scheduler.PolynomialLR(opt, total_iters=80, power=2.0),
        100,
    ),
    "PolynomialLR-linear": (
        schedules.PolynomialDecay(LR0, decay_steps=50, end_learning_rate=0.0),
        lambda opt: torch.optim.lr_scheduler.PolynomialLR(opt, total_iters=50, power=1.0),
        100,
    ),
    # the warm-up of CosineDecay from 0.01 to LR0 in 20 steps: LinearLR on base rate LR0
    "LinearLR=warm-up": (
        schedules.CosineDecay(0.01, decay_steps=50, warmup_target=LR0, warmup_steps=20),
        lambda opt: torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=20),
        20,
    ),
}


@pytest.mark.parametrize("case", list(TORCH_SCHEDULES))
def test_matches_torch_scheduler(case):
    schedule, make_scheduler, steps = TORCH_SCHEDULES[case]
    mine, theirs = ours(schedule, steps), torch_rates(make_scheduler, steps)
    # torch updates most of these recursively (lr_t from lr_{t-1}): rounding accumulates
    np.testing.assert_allclose(mine, theirs, rtol=1e-12, atol=1e-16)


def test_cosine_decay_after_warm_up_is_torch_cosine_annealing_from_the_target():
    schedule = schedules.CosineDecay(
        0.0, decay_steps=50, alpha=0.1, warmup_target=LR0, warmup_steps=20
    )
    cosine = torch_rates(
        lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=50, eta_min=0.1 * LR0),
        51,
    )
    np.testing.assert_allclose(ours(schedule, 71)[20:], cosine, rtol=1e-12)
    assert schedule(0) == 0.0 and schedule(10) == pytest.approx(LR0 / 2, rel=1e-15)
    assert schedule(1000) == pytest.approx(0.1 * LR0, rel=1e-15)


# ----- closed forms (Keras' documentation) -------------------------------------------------------
def test_exponential_decay_formula():
    schedule = schedules.ExponentialDecay(0.5, decay_steps=30, decay_rate=0.7)
    for t in range(0, 200, 7):
        assert schedule(t) == pytest.approx(0.5 * 0.7 ** (t / 30), rel=1e-14)
    stairs = schedules.ExponentialDecay(0.5, decay_steps=30, decay_rate=0.7, staircase=True)
    assert [stairs(t) for t in (0, 29, 30, 59, 60)] == pytest.approx(
        [0.5, 0.5, 0.35, 0.35, 0.245], rel=1e-14
    )


@pytest.mark.parametrize("staircase", [False, True])
def test_inverse_time_decay_formula(staircase):
    schedule = schedules.InverseTimeDecay(0.2, decay_steps=10, decay_rate=0.5, staircase=staircase)
    for t in range(0, 100, 3):
        p = math.floor(t / 10) if staircase else t / 10
        assert schedule(t) == pytest.approx(0.2 / (1 + 0.5 * p), rel=1e-14)


def test_polynomial_decay_formula_end_rate_and_cycle():
    schedule = schedules.PolynomialDecay(0.1, decay_steps=20, end_learning_rate=0.01, power=0.5)
    for t in range(0, 60, 3):
        expected = (0.1 - 0.01) * (1 - min(t, 20) / 20) ** 0.5 + 0.01
        assert schedule(t) == pytest.approx(expected, rel=1e-14)
    cycle = schedules.PolynomialDecay(0.1, 20, end_learning_rate=0.01, power=0.5, cycle=True)
    for t in range(0, 100, 3):
        T = 20 * max(1, math.ceil(t / 20))
        expected = (0.1 - 0.01) * (1 - t / T) ** 0.5 + 0.01
        assert cycle(t) == pytest.approx(expected, rel=1e-14)
    assert cycle(0) == 0.1 and cycle(20) == pytest.approx(0.01) and cycle(21) > 0.01


def test_cosine_decay_formula_and_keras_defaults():
    schedule = schedules.CosineDecay(0.3, decay_steps=40, alpha=0.25)
    for t in range(0, 80, 3):
        c = 0.5 * (1 + math.cos(math.pi * min(t, 40) / 40))
        assert schedule(t) == pytest.approx(0.3 * ((1 - 0.25) * c + 0.25), rel=1e-14)
    config = schedules.CosineDecay(0.3, 40).get_config()
    assert config == {
        "initial_learning_rate": 0.3,
        "decay_steps": 40,
        "alpha": 0.0,
        "name": "CosineDecay",
        "warmup_target": None,
        "warmup_steps": 0,
    }


def test_piecewise_constant_boundaries_belong_to_the_piece_before():
    schedule = schedules.PiecewiseConstantDecay([10, 20], [1.0, 0.5, 0.1])
    assert [schedule(t) for t in (0, 10, 11, 20, 21, 10**6)] == [1.0, 1.0, 0.5, 0.5, 0.1, 0.1]
    assert schedules.PiecewiseConstantDecay([], [0.3])(5) == 0.3


# ----- configs and errors ------------------------------------------------------------------------
ALL_SCHEDULES = [
    schedules.ExponentialDecay(0.1, 100, 0.96, staircase=True),
    schedules.InverseTimeDecay(0.1, 1.0, 0.5),
    schedules.PolynomialDecay(0.1, 1000, 0.001, power=0.5, cycle=True),
    schedules.CosineDecay(0.0, 500, alpha=0.1, warmup_target=0.01, warmup_steps=50),
    schedules.PiecewiseConstantDecay([100, 200], [0.1, 0.01, 0.001], name="steps"),
]


@pytest.mark.parametrize("schedule", ALL_SCHEDULES, ids=lambda s: type(s).__name__)
def test_config_round_trip_through_json(schedule):
    text = json.dumps(schedules.serialize(schedule))
    clone = schedules.deserialize(json.loads(text))
    assert type(clone) is type(schedule)
    assert clone.get_config() == schedule.get_config()
    assert type(schedule).from_config(schedule.get_config()).get_config() == schedule.get_config()
    steps = np.arange(0, 1200, 37)
    np.testing.assert_array_equal(clone(steps), schedule(steps))
    assert type(schedule).__name__ in repr(schedule)


@pytest.mark.parametrize(
    "make, message",
    [
        (
            lambda: schedules.ExponentialDecay(0.1, 0, 0.9),
            r"decay_steps must be a finite number > 0, got 0",
        ),
        (lambda: schedules.ExponentialDecay(0.1, -5, 0.9), r"decay_steps must be .*> 0, got -5"),
        (
            lambda: schedules.ExponentialDecay(-0.1, 10, 0.9),
            r"initial_learning_rate must be .*>= 0",
        ),
        (lambda: schedules.ExponentialDecay(0.1, 10, 0.0), r"decay_rate must be .*> 0, got 0\.0"),
        (
            lambda: schedules.ExponentialDecay(0.1, 10, 0.9, staircase="no"),
            r"staircase must be True",
        ),
        (lambda: schedules.InverseTimeDecay(0.1, 0.0, 0.5), r"InverseTimeDecay: decay_steps must"),
        (lambda: schedules.InverseTimeDecay(0.1, 1, -0.5), r"decay_rate must be .*>= 0"),
        (lambda: schedules.PolynomialDecay(0.1, 0), r"PolynomialDecay: decay_steps must"),
        (lambda: schedules.PolynomialDecay(0.1, 10, -0.01), r"end_learning_rate must be .*>= 0"),
        (lambda: schedules.PolynomialDecay(0.1, 10, power=-1), r"power must be .*>= 0"),
        (lambda: schedules.CosineDecay(0.1, 0), r"CosineDecay: decay_steps must be .*> 0, got 0"),
        (lambda: schedules.CosineDecay(float("nan"), 10), r"initial_learning_rate must be .*nan"),
        (lambda: schedules.CosineDecay(0.1, 10, alpha=1.5), r"alpha must be in \[0, 1\], got 1\.5"),
        (lambda: schedules.CosineDecay(0.1, 10, warmup_target=-1), r"warmup_target must be"),
        (
            lambda: schedules.CosineDecay(0.1, 10, warmup_steps=-1),
            r"warmup_steps must be an integer >= 0",
        ),
        (
            lambda: schedules.CosineDecay(0.1, 10, warmup_steps=2.5),
            r"warmup_steps must be an integer",
        ),
        (
            lambda: schedules.PiecewiseConstantDecay([10, 20], [0.1, 0.01]),
            r"PiecewiseConstantDecay: boundaries must have one element fewer than values, got 2 "
            r"boundaries \[10, 20\] and 2 values",
        ),
        (
            lambda: schedules.PiecewiseConstantDecay([20, 10], [0.1, 0.01, 0.001]),
            r"boundaries must be strictly increasing, got \[20, 10\]",
        ),
        (
            lambda: schedules.PiecewiseConstantDecay([10], [0.1, -0.01]),
            r"each value must be .*>= 0",
        ),
        (lambda: schedules.PiecewiseConstantDecay(10, [0.1]), r"must be lists of numbers"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_invalid_schedule_arguments(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_unknown_schedule_class():
    with pytest.raises(ValueError, match=r"Unknown learning rate schedule 'CosineDecy'\. Did you"):
        schedules.deserialize({"class_name": "CosineDecy", "config": {}})


def test_schedules_module_paths():
    assert keras.optimizers.schedules.CosineDecay is schedules.CosineDecay
    from slidenet.optimizers.schedules import CosineDecay  # noqa: F401 - the Keras import path


# ----- optimizers with a schedule ----------------------------------------------------------------
def test_the_optimizer_evaluates_the_schedule_at_iterations_before_each_step():
    schedule = schedules.ExponentialDecay(0.5, decay_steps=1, decay_rate=0.5)
    opt = optimizers.SGD(learning_rate=schedule)
    w = [np.zeros(1)]
    seen = []
    for _ in range(4):
        seen.append(opt.learning_rate)
        before = w[0].copy()
        opt.apply(w, [np.ones(1)])
        assert before - w[0] == pytest.approx([seen[-1]], rel=1e-15)
    assert seen == [0.5, 0.25, 0.125, 0.0625]
    assert type(opt.learning_rate) is float and opt.learning_rate == 0.03125


def sgd_problem():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(12, 3)), rng.normal(size=(12,))
    return x, y, rng.normal(size=3)


def test_adamw_with_cosine_decay_matches_torch_adamw_with_cosine_annealing_for_100_steps():
    """The schedule sets both the step and the decoupled decay (lr * wd), as in torch."""
    x, y, w0 = sgd_problem()

    def grad(w):
        return 2 * x.T @ (x @ w - y) / len(y)

    opt = optimizers.AdamW(
        schedules.CosineDecay(0.05, decay_steps=100, alpha=0.1), weight_decay=0.2, epsilon=1e-16
    )
    w = [w0.copy()]
    mine = []
    for _ in range(100):
        opt.apply(w, [grad(w[0])])
        mine.append(w[0].copy())

    p = leaf(w0)
    topt = torch.optim.AdamW([p], lr=0.05, weight_decay=0.2, eps=1e-16)
    tsched = torch.optim.lr_scheduler.CosineAnnealingLR(topt, T_max=100, eta_min=0.005)
    theirs = []
    for _ in range(100):
        p.grad = leaf(grad(to_numpy(p)), grad=False)
        topt.step()
        tsched.step()
        theirs.append(to_numpy(p))
    np.testing.assert_allclose(mine, theirs, rtol=1e-12, atol=1e-14)
    assert opt.iterations == 100 and opt.learning_rate == pytest.approx(0.005)


def test_a_schedule_cannot_be_overwritten_by_a_number_but_can_replace_one():
    schedule = schedules.CosineDecay(0.1, 10)
    opt = optimizers.Adam(schedule)
    with pytest.raises(TypeError, match=r"Adam: this optimizer was created with a LearningRateSch"):
        opt.learning_rate = 0.01
    plain = optimizers.Adam(0.01)
    plain.learning_rate = schedule
    assert plain.learning_rate == 0.1 and plain.get_config()["learning_rate"]["class_name"] == (
        "CosineDecay"
    )
    with pytest.raises(ValueError, match=r"Adam: learning_rate must be a finite number > 0"):
        optimizers.Adam(0.01).learning_rate = -1.0  # numbers are checked when set, too


@pytest.mark.parametrize("name", ["sgd", "adamw", "nadam", "lion", "adadelta"])
def test_optimizer_with_schedule_serializes_to_json_and_back(name):
    opt = optimizers.get(name)
    opt = type(opt).from_config(
        {**opt.get_config(), "learning_rate": schedules.PolynomialDecay(0.01, 100, power=2.0)}
    )
    text = json.dumps(optimizers.serialize(opt))
    clone = optimizers.deserialize(json.loads(text))
    assert type(clone) is type(opt)
    assert clone.get_config() == opt.get_config()
    assert clone.get_config()["learning_rate"]["class_name"] == "PolynomialDecay"
    clone.iterations = opt.iterations = 50
    assert clone.learning_rate == opt.learning_rate == pytest.approx(0.01 * 0.25 + 0.0001 * 0.75)


class HalveEvery(schedules.LearningRateSchedule):
    """A schedule of one's own: found again by its class name when deserialized."""

    def __init__(self, initial_learning_rate, period):
        self.initial_learning_rate, self.period = initial_learning_rate, period

    def __call__(self, step):
        return self.initial_learning_rate * 0.5 ** (step // self.period)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "period": self.period}


def test_custom_schedule_round_trip():
    opt = optimizers.SGD(HalveEvery(0.4, 3))
    clone = optimizers.deserialize(json.loads(json.dumps(optimizers.serialize(opt))))
    assert clone.get_config()["learning_rate"]["class_name"] == "HalveEvery"
    clone.iterations = 7
    assert clone.learning_rate == 0.1
    again = optimizers.deserialize(optimizers.serialize(opt), custom_objects={"X": HalveEvery})
    assert again.get_config() == opt.get_config()


def test_a_schedule_returning_a_negative_rate_stops_the_step():
    class Broken(schedules.LearningRateSchedule):
        def __call__(self, step):
            return 0.1 - step

    opt = optimizers.SGD(Broken())
    w = [np.ones(2)]
    opt.apply(w, [np.ones(2)])
    with pytest.raises(
        ValueError, match=r"SGD: the learning rate schedule .* returned -0\.9 at step 1"
    ):
        opt.apply(w, [np.ones(2)])
    np.testing.assert_array_equal(w[0], [0.9, 0.9])


def test_fit_logs_the_scheduled_rate_and_learning_rate_scheduler_refuses_a_schedule():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.layers.Dense(2, input_shape=(3,))])
    schedule = schedules.ExponentialDecay(0.1, decay_steps=4, decay_rate=0.5)
    model.compile(optimizers.SGD(schedule), "mse")
    rng = np.random.default_rng(0)
    x, y = rng.random((16, 3), np.float32), rng.random((16, 2), np.float32)
    history = model.fit(x, y, batch_size=8, epochs=3, verbose=0)  # 2 steps per epoch
    assert history.history["learning_rate"] == pytest.approx(
        [schedule(2), schedule(4), schedule(6)]
    )
    callback = keras.callbacks.LearningRateScheduler(lambda epoch: 0.01)
    with pytest.raises(TypeError, match="created with a LearningRateSchedule"):
        model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[callback])
