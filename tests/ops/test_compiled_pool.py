"""Compiled pooling kernels (slidenet/ops/compiled/pool.py) against the NumPy path.

Every case runs the public op twice, under kernels.using("numpy") (the reference) and
kernels.using("numba"), and compares: max pooling exactly (the same winners: the first maximum in
window order; the backward pass is checked with integer-valued dy so that sums of routed gradients
are exact too), average and sum to 1e-5 (float32) / 1e-12 (float64) relative.
"""

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slidenet import ops
from slidenet.ops import kernels

pytest.importorskip("numba")

TOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}
KINDS = ["max", "avg", "sum"]
DTYPES = [np.float32, np.float64]

# id, x shape (N, H, W, D), pool_size, stride, padding
CASES = [
    ("2x2-tiled", (3, 8, 8, 5), 2, None, "valid"),
    ("2x2-tiled-lenet", (4, 28, 28, 6), 2, None, "valid"),
    ("2x2-odd-valid-drops", (2, 7, 9, 3), 2, None, "valid"),
    ("2x2-odd-same", (2, 7, 9, 3), 2, None, "same"),
    ("2x2-one-row", (1, 2, 10, 4), 2, None, "valid"),
    ("P3-S2-overlap", (2, 9, 9, 2), 3, 2, "valid"),
    ("P3-S1-overlap", (1, 6, 7, 2), 3, 1, "valid"),
    ("P3-S2-same", (2, 8, 8, 3), 3, 2, "same"),
    ("P3-S1-same", (1, 6, 6, 2), 3, 1, "same"),
    ("P3x2-S(1,2)-same", (1, 7, 6, 2), (3, 2), (1, 2), "same"),
    ("P2-S3-gaps", (1, 8, 8, 2), 2, 3, "valid"),
    ("P3-S3-tiled", (2, 9, 9, 3), 3, None, "valid"),
    ("P3-S3-valid-drops", (1, 8, 8, 1), 3, None, "valid"),
    ("P4-S3-same", (1, 9, 7, 2), 4, 3, "same"),
    ("P1-S1", (2, 4, 5, 3), 1, 1, "valid"),
    ("P5-S1-same-big-pad", (1, 3, 3, 2), 5, 1, "same"),
    ("P(1,3)-1d-like", (2, 1, 11, 4), (1, 3), (1, 2), "same"),
    ("P12-int16-winners", (1, 12, 12, 2), 12, None, "valid"),
]
IDS = [c[0] for c in CASES]


def _run(backend, x, dy_of, pool, stride, padding, kind):
    with kernels.using(backend):
        y, cache = ops.pool2d_forward(x, pool, stride, padding, kind)
        dy = dy_of(y)
        return y, ops.pool2d_backward(dy, cache), cache


def _compare(x, pool, stride, padding, kind, rng, dy_dtype=None):
    """Forward and backward under both backends; returns the compiled path's cache."""
    dtype = np.dtype(dy_dtype or x.dtype)

    def dy_of(y):  # integers: routed / summed gradients are exact in any order
        return rng.integers(-9, 10, y.shape).astype(dtype)

    state = rng.bit_generator.state
    y0, dx0, _ = _run("numpy", x, dy_of, pool, stride, padding, kind)
    rng.bit_generator.state = state  # the same dy for both
    y1, dx1, cache = _run("numba", x, dy_of, pool, stride, padding, kind)
    assert y1.dtype == y0.dtype and dx1.dtype == dx0.dtype
    assert y1.shape == y0.shape and dx1.shape == dx0.shape == x.shape
    if kind == "max":
        np.testing.assert_array_equal(y1, y0)
        np.testing.assert_array_equal(dx1, dx0)
        assert cache.argmax is not None and cache.xp is None  # the compiled path ran
    else:
        _assert_close(y1, y0)
        _assert_close(dx1, dx0)
    return cache


def _assert_close(actual, expected):
    """Within TOL relative, elementwise and to the array's scale (a sum of overlapping windows'
    gradients added in another order may cancel to 3e-8 instead of 0)."""
    tol = TOL[expected.dtype]
    scale = float(np.max(np.abs(expected), initial=0.0))
    np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol * scale)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("case", "shape", "pool", "stride", "padding"), CASES, ids=IDS)
def test_compiled_pool2d_matches_numpy(case, shape, pool, stride, padding, kind, dtype, rng):
    x = rng.standard_normal(shape).astype(dtype)
    _compare(x, pool, stride, padding, kind, rng)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize(("case", "shape", "pool", "stride", "padding"), CASES, ids=IDS)
def test_compiled_max_pool_routes_to_the_same_winners(case, shape, pool, stride, padding, dtype):
    """Few distinct values: many ties, each must go to the first maximum in window order."""
    rng = np.random.default_rng(7)
    x = rng.integers(0, 3, shape).astype(dtype)
    _compare(x, pool, stride, padding, "max", rng)


def test_winner_index_is_the_first_maximum_in_window_order():
    x = np.array([[1, 5], [5, 5]], np.float32).reshape(1, 2, 2, 1)
    with kernels.using("numba"):
        y, cache = ops.max_pool2d_forward(x, 2)
        dx = ops.max_pool2d_backward(np.ones_like(y), cache)
    assert cache.argmax.dtype == np.int8 and cache.argmax.ravel().tolist() == [1]
    np.testing.assert_array_equal(dx[0, :, :, 0], [[0, 1], [0, 0]])


@pytest.mark.parametrize("pool", [2, 3])
def test_nan_and_infinities_as_the_numpy_path(pool, rng):
    """A NaN wins its window and routes the gradient nowhere; -inf windows with padding too."""
    x = rng.standard_normal((2, 7, 7, 3))
    x[0, 0, 0, 0] = x[1, 3, 4, 2] = np.nan
    x[0, 2:5, 2:5, 1] = -np.inf
    x[1, :, :, 0] = -np.inf  # all -inf: padding (-inf too) wins where it comes first
    x[1, 5, 5, 1] = np.inf
    for padding in ("valid", "same"):
        for stride in (1, pool):
            y, cache = _run_both(x, pool, stride, padding)
            assert np.isnan(y).any()


def _run_both(x, pool, stride, padding):
    out = []
    for backend in ("numpy", "numba"):
        with kernels.using(backend):
            y, cache = ops.max_pool2d_forward(x, pool, stride, padding)
            dx = ops.max_pool2d_backward(np.ones_like(y), cache)
        out.append((y, dx, cache))
    (y0, dx0, _), (y1, dx1, cache) = out
    np.testing.assert_array_equal(y1, y0)
    np.testing.assert_array_equal(dx1, dx0)
    return y1, cache


@pytest.mark.parametrize("kind", KINDS)
def test_caches_work_across_backends(kind, rng):
    """A cache made by one path is accepted by the other's backward (max: from the winners)."""
    x = rng.standard_normal((2, 7, 8, 3)).astype(np.float32)
    for pool, stride, padding in [(2, None, "valid"), (3, 2, "same"), (3, 1, "valid")]:
        with kernels.using("numpy"):
            y, cache_np = ops.pool2d_forward(x, pool, stride, padding, kind)
        dy = rng.integers(-9, 10, y.shape).astype(np.float32)
        with kernels.using("numpy"):
            expected = ops.pool2d_backward(dy, cache_np)
        with kernels.using("numba"):
            _, cache_nb = ops.pool2d_forward(x, pool, stride, padding, kind)
            got_nb_np = ops.pool2d_backward(dy, cache_np)
        with kernels.using("numpy"):
            got_np_nb = ops.pool2d_backward(dy, cache_nb)
        _assert_close(got_nb_np, expected)
        _assert_close(got_np_nb, expected)


def test_float64_gradient_of_a_float32_pool(rng):
    x = rng.standard_normal((2, 6, 6, 4)).astype(np.float32)
    for kind in KINDS:
        _compare(x, 3, 2, "same", kind, rng, dy_dtype=np.float64)


def test_strided_input_and_dy_and_unmodified_inputs(rng):
    base = rng.standard_normal((3, 5, 9, 8)).astype(np.float32)
    x = base.transpose(0, 2, 1, 3)[:, :, :, ::2]  # (3, 9, 5, 4), not contiguous
    for kind in KINDS:
        before = x.copy()
        _compare(x, 2, None, "same", kind, rng)
        np.testing.assert_array_equal(x, before)
    with kernels.using("numba"):
        y, cache = ops.max_pool2d_forward(x, 2)
        dy = np.asfortranarray(np.ones_like(y))
        kept = dy.copy()
        dx = ops.max_pool2d_backward(dy, cache)
    np.testing.assert_array_equal(dy, kept)
    with kernels.using("numpy"):
        y0, cache0 = ops.max_pool2d_forward(x, 2)
        np.testing.assert_array_equal(dx, ops.max_pool2d_backward(np.ones_like(y0), cache0))


def test_other_dtypes_fall_back_to_numpy(rng):
    x = rng.standard_normal((1, 6, 6, 2)).astype(np.float16)
    with kernels.using("numba"):
        y, cache = ops.max_pool2d_forward(x, 2)
        assert cache.argmax is None and y.dtype == np.float16
        assert ops.max_pool2d_backward(np.ones_like(y), cache).dtype == np.float16
        y, cache = ops.avg_pool2d_forward(x, 2)
        assert ops.avg_pool2d_backward(np.ones_like(y), cache).dtype == np.float16


def test_dy_of_the_wrong_shape_is_refused(rng):
    x = rng.standard_normal((2, 6, 6, 3)).astype(np.float32)
    for kind in KINDS:
        with kernels.using("numba"):
            y, cache = ops.pool2d_forward(x, 2, None, "valid", kind)
            with pytest.raises(ValueError, match="dy must have the output's shape"):
                ops.pool2d_backward(np.ones((2, 3, 3, 4), np.float32), cache)


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pool1d_under_both_backends(kind, rng):
    x = rng.standard_normal((2, 11, 3))
    out = []
    for backend in ("numpy", "numba"):
        with kernels.using(backend):
            y, cache = ops.pool1d_forward(x, 3, 2, "same", kind)
            out.append((y, ops.pool1d_backward(np.ones_like(y), cache)))
    _assert_close(out[1][0], out[0][0])
    _assert_close(out[1][1], out[0][1])


def test_numba_is_not_imported_by_slidenet():
    code = "import sys, slidenet, slidenet.ops.pool; print('numba' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@st.composite
def pool_problems(draw):
    pool = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    padding = draw(st.sampled_from(["valid", "same"]))
    lo = (1, 1) if padding == "same" else pool  # 'valid' needs the window to fit
    shape = (
        draw(st.integers(1, 3)),
        draw(st.integers(lo[0], 11)),
        draw(st.integers(lo[1], 11)),
        draw(st.integers(1, 9)),
    )
    kind = draw(st.sampled_from(KINDS))
    dtype = draw(st.sampled_from(DTYPES))
    ties = draw(st.booleans())
    return shape, pool, stride, padding, kind, dtype, ties, draw(st.integers(0, 2**32 - 1))


@settings(max_examples=150, deadline=None)
@given(pool_problems())
def test_compiled_pool2d_property(problem):
    shape, pool, stride, padding, kind, dtype, ties, seed = problem
    rng = np.random.default_rng(seed)
    x = rng.integers(-2, 3, shape) if ties else rng.standard_normal(shape)
    _compare(x.astype(dtype), pool, stride, padding, kind, rng)
