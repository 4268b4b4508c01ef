"""Compiled ReLU (slidenet/ops/compiled/activations.py) against the NumPy path: the same numbers
exactly (y, the mask and dx), NaN / inf / signed zeros included."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slidenet import ops
from slidenet.ops import activations, kernels

pytest.importorskip("numba")

SPECIAL = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-45, -1e-45, 3.0, -3.0]
DTYPES = [np.float32, np.float64]


@pytest.fixture
def compiled_calls(monkeypatch):
    """Counts the calls of the compiled kernels (to check the compiled path did run)."""
    from slidenet.ops.compiled import activations as compiled

    calls = {"relu_forward": 0, "relu_backward": 0}
    for name in calls:
        kernel = getattr(compiled, name)

        def spy(*args, _kernel=kernel, _name=name):
            calls[_name] += 1
            return _kernel(*args)

        monkeypatch.setattr(compiled, name, spy)
    return calls


def _both(fn, *args):
    out = []
    for backend in ("numpy", "numba"):
        with kernels.using(backend):
            out.append(fn(*args))
    return out


def _with_specials(rng, shape, dtype):
    x = rng.standard_normal(shape).astype(dtype)
    flat = x.reshape(-1)
    flat[: len(SPECIAL)] = SPECIAL
    flat[-len(SPECIAL) :] = SPECIAL
    return x


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("shape", [(8, 32, 32, 16), (2, 70001), (65536,)])
def test_compiled_relu_matches_numpy(shape, dtype, rng, compiled_calls):
    x = _with_specials(rng, shape, dtype)
    before = x.copy()
    (y0, m0), (y1, m1) = _both(ops.relu_forward, x)
    assert compiled_calls["relu_forward"] == 1
    np.testing.assert_array_equal(x, before)
    assert y1.dtype == y0.dtype and m1.dtype == m0.dtype == np.bool_
    np.testing.assert_array_equal(y1, y0)  # NaN where NumPy has NaN
    np.testing.assert_array_equal(m1, m0)
    dy = _with_specials(rng, shape, dtype)
    with np.errstate(invalid="ignore"):  # NumPy warns for inf * 0
        dx0, dx1 = _both(ops.relu_backward, dy, m0)
    assert compiled_calls["relu_backward"] == 1
    assert dx1.dtype == dx0.dtype
    np.testing.assert_array_equal(dx1, dx0)  # NaN / inf dy where the mask is 0: NaN, as NumPy


def test_small_strided_or_other_inputs_take_the_numpy_path(rng, compiled_calls):
    small = rng.standard_normal((4, 8, 8, 3)).astype(np.float32)
    strided = rng.standard_normal((300, 600)).astype(np.float32)[:, ::2]
    half = rng.standard_normal((300, 300)).astype(np.float16)
    for x in (small, strided, half):
        (y0, m0), (y1, m1) = _both(ops.relu_forward, x)
        np.testing.assert_array_equal(y1, y0)
        np.testing.assert_array_equal(m1, m0)
        dx0, dx1 = _both(ops.relu_backward, x, m0)  # (dy = x: small, strided or float16)
        np.testing.assert_array_equal(dx1, dx0)
    big = rng.standard_normal((300, 300)).astype(np.float32)
    mask = big > 0
    for cache in (mask.astype(np.float32), mask[None], mask.T):  # not a matching bool mask
        dx0, dx1 = _both(ops.relu_backward, big, cache)
        np.testing.assert_array_equal(dx1, dx0)
    assert compiled_calls == {"relu_forward": 0, "relu_backward": 0}


def test_relu_layer_activation_under_both_backends(rng):
    x = rng.standard_normal((4, 96, 96, 8)).astype(np.float32)  # 294,912 elements
    y0, y1 = _both(ops.relu, x)
    np.testing.assert_array_equal(y1, y0)


@settings(max_examples=60, deadline=None)
@given(
    size=st.integers(1, 100_000),
    dtype=st.sampled_from(DTYPES),
    seed=st.integers(0, 2**32 - 1),
)
def test_compiled_relu_property(size, dtype, seed):
    """Any length (chunk boundaries included), with the size threshold lowered to 1."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(size).astype(dtype)
    x[rng.random(size) < 0.05] = np.nan
    dy = rng.standard_normal(size).astype(dtype)
    old = activations._COMPILED_MIN_SIZE
    activations._COMPILED_MIN_SIZE = 1
    try:
        (y0, m0), (y1, m1) = _both(ops.relu_forward, x)
        dx0, dx1 = _both(ops.relu_backward, dy, m0)
    finally:
        activations._COMPILED_MIN_SIZE = old
    np.testing.assert_array_equal(y1, y0)
    np.testing.assert_array_equal(m1, m0)
    np.testing.assert_array_equal(dx1, dx0)
