"""Compiled optimizer updates (slidenet/ops/compiled/optim.py) against the NumPy path.

Every case runs the same steps twice, under kernels.using("numpy") (the reference) and
kernels.using("numba"), and requires the weights and the state to be equal bit for bit: the
kernels do the NumPy update's operations in the same order and precision, so that a run does not
depend on the backend beyond its speed, and a resumed run stays equal to an uninterrupted one.
"""

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slidenet import optimizers
from slidenet.ops import kernels
from slidenet.optimizers import schedules

pytest.importorskip("numba")

DTYPES = [np.float32, np.float64]
SHAPES = [(5, 5, 1, 4), (4,), (37, 29), (3, 3, 4, 6), (1,)]

# id, factory: every optimizer and option that has a kernel, with the base class's extras
FACTORIES = {
    "adam": lambda: optimizers.Adam(0.01),
    "adam-amsgrad": lambda: optimizers.Adam(0.01, amsgrad=True),
    "adamw": lambda: optimizers.AdamW(0.01, weight_decay=0.1),
    "adamw-amsgrad-clipnorm": lambda: optimizers.AdamW(0.01, amsgrad=True, clipnorm=0.5),
    "adam-global-clipnorm-schedule": lambda: optimizers.Adam(
        schedules.ExponentialDecay(0.05, decay_steps=2, decay_rate=0.5), global_clipnorm=1.0
    ),
    "adam-clipvalue-eps": lambda: optimizers.Adam(0.01, epsilon=0.1, clipvalue=0.3),
    "sgd": lambda: optimizers.SGD(0.1),
    "sgd-decay": lambda: optimizers.SGD(0.1, weight_decay=0.05),
    "sgd-momentum": lambda: optimizers.SGD(0.1, momentum=0.9),
    "sgd-nesterov-decay": lambda: optimizers.SGD(
        0.1, momentum=0.7, nesterov=True, weight_decay=0.1
    ),
    "sgd-nesterov-schedule": lambda: optimizers.SGD(
        schedules.PiecewiseConstantDecay([2], [0.1, 0.01]), momentum=0.9, nesterov=True
    ),
    "rmsprop": lambda: optimizers.RMSprop(0.01),
    "rmsprop-momentum": lambda: optimizers.RMSprop(0.01, momentum=0.9),
    "rmsprop-centered": lambda: optimizers.RMSprop(0.01, centered=True),
    "rmsprop-centered-momentum-decay": lambda: optimizers.RMSprop(
        0.01, momentum=0.5, centered=True, weight_decay=0.1
    ),
    "adagrad": lambda: optimizers.Adagrad(0.1),
    "adagrad-decay-clipnorm": lambda: optimizers.Adagrad(0.1, weight_decay=0.01, clipnorm=1.0),
}
# optimizers without a kernel: under "numba" they take the NumPy path, with the same numbers
WITHOUT_KERNEL = {
    "nadam-decay": lambda: optimizers.Nadam(0.01, weight_decay=0.1),
    "adamax": lambda: optimizers.Adamax(0.01),
    "adadelta": lambda: optimizers.Adadelta(1.0),
    "lion-decay": lambda: optimizers.Lion(0.001, weight_decay=0.1),
}


def _steps(backend, make, weights, grad_seq):
    """Copies of ``weights`` after one step per gradient list, and the optimizer."""
    weights = [w.copy() for w in weights]
    opt = make()
    with kernels.using(backend):
        for grads in grad_seq:
            opt.apply(weights, grads)
    return weights, opt


def _assert_same(a, b):
    (wa, oa), (wb, ob) = a, b
    for u, v in zip(wa + oa.variables(), wb + ob.variables(), strict=True):
        assert u.dtype == v.dtype
        np.testing.assert_array_equal(u, v, strict=True)
    assert oa.iterations == ob.iterations


def _problem(rng, dtype, shapes=SHAPES, steps=4):
    weights = [rng.standard_normal(s).astype(dtype) for s in shapes]
    grads = [[rng.standard_normal(s).astype(dtype) for s in shapes] for _ in range(steps)]
    return weights, grads


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(FACTORIES) + list(WITHOUT_KERNEL))
def test_compiled_update_is_bit_for_bit_the_numpy_update(name, dtype, rng):
    make = FACTORIES.get(name) or WITHOUT_KERNEL[name]
    weights, grads = _problem(rng, dtype)
    _assert_same(_steps("numpy", make, weights, grads), _steps("numba", make, weights, grads))


@pytest.mark.parametrize(
    "name, kernel",
    [
        ("adam", "adam"),
        ("adam-amsgrad", "adam_amsgrad"),
        ("sgd", "sgd"),
        ("sgd-momentum", "sgd_momentum"),
        ("rmsprop-centered", "rmsprop"),
        ("adagrad", "adagrad"),
    ],
)
def test_the_kernel_runs_under_numba_only(name, kernel, rng, monkeypatch):
    from slidenet.ops.compiled import optim

    calls = []
    original = getattr(optim, kernel)
    monkeypatch.setattr(optim, kernel, lambda *a: calls.append(1) or original(*a))
    weights, grads = _problem(rng, np.float32, steps=1)
    _steps("numpy", FACTORIES[name], weights, grads)
    assert calls == []
    _steps("numba", FACTORIES[name], weights, grads)
    assert len(calls) == len(SHAPES)


def test_nan_and_inf_gradients_give_the_same_bits(rng):
    weights, grads = _problem(rng, np.float32, steps=3)
    grads[1][2][0, :3] = [np.nan, np.inf, -np.inf]
    grads[2][1][0] = np.nan
    for name in ("adam-amsgrad", "adamw", "sgd-nesterov-decay", "rmsprop-centered-momentum-decay"):
        make = FACTORIES[name]
        with np.errstate(all="ignore"):
            runs = [_steps(b, make, weights, grads) for b in ("numpy", "numba")]
        _assert_same(*runs)


def test_amsgrad_keeps_nan_in_v_hat_as_np_maximum(rng):
    """np.maximum propagates a NaN from either side; so does the kernel."""
    weights, grads = _problem(rng, np.float64, shapes=[(6,)], steps=3)
    grads[0][0][1] = np.nan  # v becomes NaN at entry 1 for good; v_hat follows
    with np.errstate(all="ignore"):
        runs = [_steps(b, FACTORIES["adam-amsgrad"], weights, grads) for b in ("numpy", "numba")]
    _assert_same(*runs)
    assert np.isnan(runs[1][1].slots["v_hat"][0][1])


def test_weight_decay_with_zero_learning_rate_turns_inf_into_nan_on_both_paths():
    """w -= w * (0 * wd) gives NaN for an infinite w: the kernel applies the decay whenever
    weight_decay is set, as the NumPy path does, not when lr * wd happens to be non-zero."""
    w = np.array([np.inf, 1.0, -0.0], np.float32)
    g = np.ones(3, np.float32)
    sched = schedules.PiecewiseConstantDecay([5], [0.0, 0.1])
    for make in (
        lambda: optimizers.SGD(sched, weight_decay=0.1),
        lambda: optimizers.AdamW(sched, weight_decay=0.1),
    ):
        with np.errstate(all="ignore"):
            runs = [_steps(b, make, [w], [[g]]) for b in ("numpy", "numba")]
        _assert_same(*runs)
        assert np.isnan(runs[1][0][0][0])


def _laid_out(case, a):
    """A fresh copy of ``a`` in the layout or dtype of the case."""
    if case == "fortran-order":
        return np.asfortranarray(a)
    if case == "strided-view":
        return np.repeat(a, 2, axis=1)[:, ::2]  # every other column of a wider array
    if case == "float16":
        return a.astype(np.float16)
    return a.copy()


@pytest.mark.parametrize(
    "case", ["fortran-order", "strided-view", "float16", "state-dtype", "grad-dtype", "shared"]
)
def test_arrays_the_kernels_do_not_take_fall_back_to_numpy(case, rng):
    """Non-contiguous weights, float16, state of another dtype (e.g. loaded from a file) and a
    weight listed twice all run the NumPy path under "numba" (a gradient of another dtype is
    cast first, then the kernel runs): the same numbers either way."""
    w0 = rng.standard_normal((6, 5))
    g = rng.standard_normal((6, 5))
    runs = []
    for backend in ("numpy", "numba"):
        w = _laid_out(case, w0)
        opt = optimizers.SGD(0.1, momentum=0.9)
        with kernels.using(backend):
            if case == "state-dtype":
                opt.apply([w], [g])  # float64 state
                w = w.astype(np.float32)
                opt.apply([w], [g.astype(np.float32)])
            elif case == "grad-dtype":
                w = w.astype(np.float32)
                opt.apply([w], [g])
            elif case == "shared":
                opt.apply([w, w], [g, g * 0.5])
            else:
                opt.apply([w], [_laid_out(case, g)])
                opt.apply([w], [_laid_out(case, g * 0.5)])
        runs.append(([w], opt))
    _assert_same(*runs)


def test_a_subclass_with_its_own_update_keeps_it_under_numba(rng):
    class HalfSGD(optimizers.SGD):
        def _update(self, i, w, g, lr):
            w -= w.dtype.type(lr / 2) * g

    weights, grads = _problem(rng, np.float32, steps=2)
    runs = [_steps(b, lambda: HalfSGD(0.1), weights, grads) for b in ("numpy", "numba")]
    _assert_same(*runs)
    expected = weights[0] - np.float32(0.05) * grads[0][0]
    expected -= np.float32(0.05) * grads[1][0]
    np.testing.assert_array_equal(runs[1][0][0], expected)


def test_resumed_run_equals_uninterrupted_run_under_numba(rng):
    """Save the state mid-run (variables, iterations), restore it into a new optimizer and
    continue: bit for bit the run that was never interrupted."""
    weights, grads = _problem(rng, np.float32, steps=6)
    for name in (
        "adamw-amsgrad-clipnorm",
        "sgd-nesterov-schedule",
        "rmsprop-centered-momentum-decay",
    ):
        make = FACTORIES[name]
        straight, _ = _steps("numba", make, weights, grads)
        first, opt = _steps("numba", make, weights, grads[:3])
        saved = [np.array(a) for a in opt.variables()], opt.iterations
        resumed = make()
        resumed.set_variables([a.copy() for a in saved[0]], len(weights))
        resumed.iterations = saved[1]
        with kernels.using("numba"):
            for gs in grads[3:]:
                resumed.apply(first, gs)
        for u, v in zip(straight, first, strict=True):
            np.testing.assert_array_equal(u, v)


@settings(max_examples=60, deadline=None)
@given(
    shapes=st.lists(
        st.lists(st.integers(1, 9), min_size=1, max_size=4).map(tuple), min_size=1, max_size=4
    ),
    dtype=st.sampled_from(DTYPES),
    name=st.sampled_from(sorted(FACTORIES)),
    steps=st.integers(1, 3),
    scale=st.sampled_from([1e-3, 1.0, 1e3]),
    seed=st.integers(0, 2**16),
)
def test_property_random_shapes_bit_for_bit(shapes, dtype, name, steps, scale, seed):
    rng = np.random.default_rng(seed)
    weights = [rng.standard_normal(s).astype(dtype) for s in shapes]
    grads = [[(rng.standard_normal(s) * scale).astype(dtype) for s in shapes] for _ in range(steps)]
    make = FACTORIES[name]
    _assert_same(_steps("numpy", make, weights, grads), _steps("numba", make, weights, grads))


def test_importing_slidenet_optimizers_does_not_import_numba():
    code = "import sys, slidenet, slidenet.optimizers; print('numba' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
