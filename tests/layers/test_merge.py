"""Merge layers (Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate) and their ops.

1. golden examples worked out by hand (ties of Maximum/Minimum included); 2. the ops against
entry-by-entry Python loops; 3. the PyTorch oracle (float64, tests/torch_oracle.py) for the output
and every input gradient, slidenet in float32 and float64; 4. float64 central differences of every
entry; then errors, config round trip, empty batches, the lowercase helpers and the call protocol
the graph executor relies on. These layers are outside tests/layers/test_layer_contract.py (which
is single-input), so the contract's points are checked here.
"""

from __future__ import annotations

import functools
import json
import math
import re

import numpy as np
import pytest
import torch

from slidenet import layers as L
from slidenet.layers.base import Layer
from slidenet.models import graph
from slidenet.ops import merge as M
from slidenet.utils import gradcheck
from torch_oracle import assert_matches, leaf, to_numpy

ELEMENTWISE = {  # name -> (layer class, torch version of the forward)
    "add": (L.Add, lambda ts: functools.reduce(torch.add, ts)),
    "subtract": (L.Subtract, lambda ts: ts[0] - ts[1]),
    "multiply": (L.Multiply, math.prod),
    "average": (L.Average, lambda ts: sum(ts) / len(ts)),
    "maximum": (L.Maximum, lambda ts: functools.reduce(torch.maximum, ts)),
    "minimum": (L.Minimum, lambda ts: functools.reduce(torch.minimum, ts)),
}
CLASSES = [L.Add, L.Subtract, L.Multiply, L.Average, L.Maximum, L.Minimum, L.Concatenate]
GRADCHECK_TOL = 1e-6


def counts(name):
    """The numbers of inputs to test an op with."""
    return (2,) if name == "subtract" else (2, 3)


def distinct_inputs(rng, n, shape, dtype=np.float64, spacing=0.1):
    """n arrays whose values are all different (by >= spacing across all inputs): no ties."""
    size = int(np.prod(shape))
    values = (rng.permutation(n * size) - n * size / 2 + 0.5) * spacing
    return [v.reshape(shape).astype(dtype) for v in np.split(values, n)]


def op_pair(name):
    """(name_forward, name_backward) from slidenet.ops.merge."""
    return getattr(M, f"{name}_forward"), getattr(M, f"{name}_backward")


def run_layer(layer, xs, dy):
    y = layer(xs)
    return y, layer.backward(dy)


# ----- 1. golden examples -------------------------------------------------------------------------
A = np.array([[1.0, 2.0], [3.0, 4.0]])
B = np.array([[5.0, 0.0], [-1.0, 4.0]])  # ties with A at [1, 1]
DY = np.array([[1.0, 2.0], [3.0, 4.0]])
GOLDEN = {
    "add": ([[6, 2], [2, 8]], [DY, DY]),
    "subtract": ([[-4, 2], [4, 0]], [DY, -DY]),
    "multiply": ([[5, 0], [-3, 16]], [DY * B, DY * A]),
    "average": ([[3, 1], [1, 4]], [DY / 2, DY / 2]),
    # ties go to the first input: A gets dy[1, 1]
    "maximum": ([[5, 2], [3, 4]], [[[0, 2], [3, 4]], [[1, 0], [0, 0]]]),
    "minimum": ([[1, 0], [-1, 4]], [[[1, 0], [0, 4]], [[0, 2], [3, 0]]]),
}


@pytest.mark.parametrize("name", list(GOLDEN))
def test_golden_two_inputs(name):
    want_y, want_dxs = GOLDEN[name]
    y, dxs = run_layer(ELEMENTWISE[name][0](dtype="float64"), [A, B], DY)
    np.testing.assert_array_equal(y, want_y)
    assert len(dxs) == 2
    for dx, want in zip(dxs, want_dxs, strict=True):
        np.testing.assert_array_equal(dx, want)


def test_golden_three_inputs_with_a_zero_and_a_three_way_tie():
    c = np.array([[2.0, 3.0], [0.5, 4.0]])
    y, (da, db, dc) = run_layer(L.Multiply(dtype="float64"), [A, B, c], DY)
    np.testing.assert_array_equal(y, [[10, 0], [-1.5, 64]])
    np.testing.assert_array_equal(da, DY * B * c)  # [0, 1]: B is 0, A's gradient is still 0
    np.testing.assert_array_equal(db, [[2, 12], [4.5, 64]])  # where B is 0: dy * a * c
    np.testing.assert_array_equal(dc, DY * A * B)
    y, (da, db, dc) = run_layer(L.Maximum(dtype="float64"), [A, B, c], DY)
    np.testing.assert_array_equal(y, [[5, 3], [3, 4]])  # [1, 1]: 4, 4, 4
    np.testing.assert_array_equal(da, [[0, 0], [3, 4]])
    np.testing.assert_array_equal(db, [[1, 0], [0, 0]])
    np.testing.assert_array_equal(dc, [[0, 2], [0, 0]])
    np.testing.assert_array_equal(da + db + dc, DY)  # the gradient is never split nor doubled


def test_golden_concatenate():
    a = np.arange(12.0).reshape(1, 2, 2, 3)
    b = -np.arange(4.0).reshape(1, 2, 2, 1)
    layer = L.Concatenate(dtype="float64")
    y = layer([a, b])
    assert y.shape == (1, 2, 2, 4) and layer.output_shape == (None, 2, 2, 4)
    np.testing.assert_array_equal(y[0, 1, 0], [6, 7, 8, -2])
    dy = np.arange(16.0).reshape(1, 2, 2, 4)
    da, db = layer.backward(dy)
    np.testing.assert_array_equal(da, dy[..., :3])
    np.testing.assert_array_equal(db, dy[..., 3:])
    y = L.Concatenate(axis=1, dtype="float64")([a, a[:, :1]])
    assert y.shape == (1, 3, 2, 3)
    np.testing.assert_array_equal(y[:, 2], a[:, 0])


# ----- 2. the ops against loops over every entry --------------------------------------------------
def naive(name, xs, dy):
    """y and [dx_i] entry by entry, with Python's sum, prod, max, min and list.index."""
    y, dxs = np.zeros(xs[0].shape), [np.zeros(xs[0].shape) for _ in xs]
    for idx in np.ndindex(xs[0].shape):
        v = [float(x[idx]) for x in xs]
        if name in ("add", "average"):
            scale = 1.0 if name == "add" else 1.0 / len(v)
            y[idx] = sum(v) * scale
            for dx in dxs:
                dx[idx] = dy[idx] * scale
        elif name == "subtract":
            y[idx], dxs[0][idx], dxs[1][idx] = v[0] - v[1], dy[idx], -dy[idx]
        elif name == "multiply":
            y[idx] = math.prod(v)
            for i, dx in enumerate(dxs):
                dx[idx] = dy[idx] * math.prod(v[:i] + v[i + 1 :])
        else:
            y[idx] = max(v) if name == "maximum" else min(v)
            dxs[v.index(y[idx])][idx] = dy[idx]  # list.index: the first input holding it
    return y, dxs


@pytest.mark.parametrize("name", list(ELEMENTWISE))
def test_ops_match_loops_ties_and_zeros_included(name):
    rng = np.random.default_rng(1)
    forward, backward = op_pair(name)
    for n in counts(name):
        xs = [rng.integers(-2, 3, size=(2, 3, 2)).astype(np.float64) for _ in range(n)]  # ties
        dy = rng.normal(size=(2, 3, 2))
        copies = [x.copy() for x in xs]
        y, cache = forward(xs)
        dxs = backward(dy, cache)
        want_y, want_dxs = naive(name, xs, dy)
        np.testing.assert_allclose(y, want_y, rtol=1e-15, atol=1e-15)
        assert len(dxs) == n
        for dx, want in zip(dxs, want_dxs, strict=True):
            np.testing.assert_allclose(dx, want, rtol=1e-15, atol=1e-15)
        for x, before in zip(xs, copies, strict=True):  # inputs untouched
            np.testing.assert_array_equal(x, before)


def test_concatenate_op_matches_index_loops():
    rng = np.random.default_rng(2)
    xs = [rng.normal(size=(2, 3, k, 2)) for k in (1, 3, 2)]
    y, cache = M.concatenate_forward(xs, axis=2)
    offsets = np.cumsum([0, 1, 3])
    for i, x in enumerate(xs):
        for n, h, w, d in np.ndindex(x.shape):
            assert y[n, h, offsets[i] + w, d] == x[n, h, w, d]
    dy = rng.normal(size=y.shape)
    for i, dx in enumerate(M.concatenate_backward(dy, cache)):
        for n, h, w, d in np.ndindex(dx.shape):
            assert dx[n, h, w, d] == dy[n, h, offsets[i] + w, d]


@pytest.mark.parametrize("name", [*ELEMENTWISE, "concatenate"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ops_keep_dtype_and_return_fresh_gradients(name, dtype):
    rng = np.random.default_rng(3)
    xs = distinct_inputs(rng, 2, (2, 3), dtype)
    forward, backward = op_pair(name)
    y, cache = forward(xs)
    dy = rng.normal(size=y.shape).astype(dtype)
    dy_before = dy.copy()
    dxs = backward(dy, cache)
    assert y.dtype == dtype and all(dx.dtype == dtype for dx in dxs)
    for i, dx in enumerate(dxs):  # a caller may accumulate into them in place
        assert not np.shares_memory(dx, dy)
        assert not any(np.shares_memory(dx, other) for other in dxs[i + 1 :])
        assert not any(np.shares_memory(dx, x) for x in xs)
        dx += 1.0
    np.testing.assert_array_equal(dy, dy_before)


# ----- 3. the PyTorch oracle ----------------------------------------------------------------------
def oracle(torch_fn, xs, dy):
    """float64 torch: the output and the gradient of sum(dy * y) for every input."""
    ts = [leaf(x) for x in xs]
    y = torch_fn(ts)
    y.backward(leaf(dy, grad=False))
    return to_numpy(y), [to_numpy(t.grad) for t in ts]


def check_against_oracle(layer, torch_fn, xs, dy, what):
    y, dxs = run_layer(layer, xs, dy)
    assert y.dtype == layer.dtype and all(dx.dtype == layer.dtype for dx in dxs)
    want_y, want_dxs = oracle(torch_fn, xs, dy)
    assert_matches(y, want_y, f"{what}: y")
    assert len(dxs) == len(xs)
    for i, (dx, want) in enumerate(zip(dxs, want_dxs, strict=True)):
        assert_matches(dx, want, f"{what}: dx_{i}")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(ELEMENTWISE))
def test_elementwise_against_torch(name, dtype):
    rng = np.random.default_rng(4)
    cls, torch_fn = ELEMENTWISE[name]
    for n in counts(name):
        # distinct values: no ties, where torch splits the gradient of maximum/minimum
        xs = distinct_inputs(rng, n, (2, 3, 4, 5), dtype, spacing=4.0 / (n * 120))
        dy = rng.normal(size=(2, 3, 4, 5)).astype(dtype)
        check_against_oracle(cls(dtype=dtype), torch_fn, xs, dy, f"{name} n={n} {dtype}")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("axis", [-1, 1, 2, -3])
def test_concatenate_against_torch(axis, dtype):
    rng = np.random.default_rng(5)
    base = [2, 3, 4, 5]
    xs = []
    for size in (1, 4, 2):
        shape = list(base)
        shape[axis] = size
        xs.append(rng.normal(size=shape).astype(dtype))
    dy = rng.normal(size=xs[0].shape[: axis % 4] + (7,) + xs[0].shape[axis % 4 + 1 :])
    dy = dy.astype(dtype)
    layer = L.Concatenate(axis=axis, dtype=dtype)
    check_against_oracle(
        layer, lambda ts: torch.cat(ts, dim=axis), xs, dy, f"concatenate axis={axis} {dtype}"
    )
    assert layer.output_shape == (None, *dy.shape[1:])


# ----- 4. float64 central differences, every entry ------------------------------------------------
def numerical_grads(layer, xs, r, eps=1e-6):
    """d sum(r * layer(xs)) / d xs[i], by central differences of every entry."""
    grads = []
    for i, x in enumerate(xs):
        g = np.zeros_like(x)
        for idx in np.ndindex(x.shape):
            plus, minus = x.copy(), x.copy()
            plus[idx] += eps
            minus[idx] -= eps
            f_plus = np.sum(r * layer([*xs[:i], plus, *xs[i + 1 :]]))
            f_minus = np.sum(r * layer([*xs[:i], minus, *xs[i + 1 :]]))
            g[idx] = (f_plus - f_minus) / (2 * eps)
        grads.append(g)
    return grads


GRADCHECK_CASES = [
    *[(name, lambda cls=cls: cls(dtype="float64"), 3) for name, (cls, _) in ELEMENTWISE.items()],
    ("concatenate_last", lambda: L.Concatenate(dtype="float64"), 3),
    ("concatenate_axis1", lambda: L.Concatenate(axis=1, dtype="float64"), 2),
]


@pytest.mark.parametrize("case", GRADCHECK_CASES, ids=[c[0] for c in GRADCHECK_CASES])
def test_numerical_gradients(case):
    name, make, n = case
    n = 2 if name == "subtract" else n
    rng = np.random.default_rng(6)
    xs = distinct_inputs(rng, n, (2, 2, 3), spacing=0.1)  # 1e-6 steps cross no max/min switch
    if name == "concatenate_last":
        xs[1] = xs[1][..., :1].copy()
    layer = make()
    y = layer(xs)
    r = rng.normal(size=y.shape)
    analytic = layer.backward(r)
    for i, (a, num) in enumerate(zip(analytic, numerical_grads(layer, xs, r), strict=True)):
        assert a.shape == xs[i].shape
        scale = max(np.max(np.abs(a)), np.max(np.abs(num)), 1e-300)
        err = float(np.max(np.abs(a - num)) / scale)
        assert err < GRADCHECK_TOL, f"{name}: dx_{i} relative error {err:.3g}"


# ----- errors -------------------------------------------------------------------------------------
def raises(exc, text):
    """pytest.raises matching ``text`` literally."""
    return pytest.raises(exc, match=re.escape(text))


def test_mismatched_shapes_name_every_shape():
    a, b = np.ones((2, 4, 4, 8)), np.ones((2, 4, 4, 3))
    with raises(
        ValueError, "Add 'm1': inputs must have the same shape, got (4, 4, 8) and (4, 4, 3)."
    ):
        L.Add(name="m1")([a, b])
    with raises(ValueError, "got (4, 4, 8), (4, 4, 8) and (4, 4, 3)"):
        L.Maximum()([a, a, b])
    c = np.ones((2, 5, 4, 3))
    with raises(ValueError, "'c1': all inputs must match except on axis -1, got (4, 4, 8) and (5"):
        L.Concatenate(name="c1")([a, c])
    with raises(ValueError, "except on axis 1, got (4, 4) and (4, 4, 3)"):
        L.Concatenate(axis=1)([np.ones((2, 4, 4)), b])
    with raises(ValueError, "multiply: inputs must have the same shape, got (2, 4, 4, 8) and"):
        M.multiply_forward([a, b])
    with raises(ValueError, "Subtract 's1': inputs must have the same batch size, got (2, 3) and"):
        L.Subtract(name="s1")([np.ones((2, 3)), np.ones((3, 3))])


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_wrong_number_or_kind_of_inputs(cls):
    x = np.ones((2, 3))
    label = re.escape(f"{cls.__name__} 'x1'")
    with pytest.raises(ValueError, match=label + " needs .*2 inputs, got 1"):
        cls(name="x1")([x])
    with pytest.raises(TypeError, match=label + r" is called on a list of batches"):
        cls(name="x1")(x)
    with pytest.raises(TypeError, match=label + r" needs a list of input shapes"):
        cls(name="x1").build((3, 4))
    with pytest.raises(ValueError, match=label + ": input shape 1"):
        cls(name="x1").build([(3,), (0,)])
    with pytest.raises(ValueError, match=label + r" \(input 1\) expects a batch"):
        cls(name="x1")([x, np.ones(3)])


def test_subtract_needs_exactly_two():
    x = np.ones((2, 3))
    with raises(ValueError, "Subtract 'sub3' needs exactly 2 inputs, got 3"):
        L.Subtract(name="sub3")([x, x, x])
    with raises(ValueError, "subtract: needs exactly 2 arrays, got 3"):
        M.subtract_forward([x, x, x])


def test_concatenate_bad_axis():
    x = np.ones((2, 4, 4, 3))
    for axis in (0, True, 1.0, "channels"):
        with raises(ValueError, "Concatenate 'cat': axis must be a non-zero int"):
            L.Concatenate(axis=axis, name="cat")
    for axis in (4, -4):
        with raises(ValueError, f"axis {axis} is out of range for inputs (N, 4, 4, 3) of rank 4"):
            L.Concatenate(axis=axis)([x, x])
    with raises(ValueError, "concatenate: axis 4 is out of range for arrays of rank 4"):
        M.concatenate_forward([x, x], axis=4)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_backward_checks_dy(cls):
    layer = cls(name="b1")
    with raises(RuntimeError, "'b1': backward() needs a forward pass first"):
        layer.backward(np.ones((2, 3)))
    y = layer([np.ones((2, 3)), np.ones((2, 3))])
    for bad in (np.ones((2, 4)), np.ones((3, *y.shape[1:])), np.ones(y.shape, dtype=complex)):
        with raises(ValueError, f"'b1': dy must be shaped like the last output {y.shape}"):
            layer.backward(bad)
    with raises(ValueError, "'b1' was built for inputs (None, 3) and (None, 3) but got (2, 3) and"):
        layer([np.ones((2, 3)), np.ones((2, 4))])


# ----- config, dtype, empty batches, helpers, the call protocol -----------------------------------
@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_config_round_trip_and_no_weights(cls):
    layer = cls(name="merge_cfg", dtype="float64") if cls is not L.Concatenate else cls(axis=2)
    config = json.loads(json.dumps(layer.get_config()))
    clone = cls.from_config(config)
    assert type(clone) is cls and clone.get_config() == layer.get_config()
    if cls is L.Concatenate:
        assert config["axis"] == 2 and clone.axis == 2
    xs = [np.ones((2, 3, 2)), np.full((2, 3, 2), 2.0)]
    np.testing.assert_array_equal(clone(xs), layer(xs))
    assert layer.weight_names == () and layer.weights == [] and layer.get_weights() == []
    assert layer.count_params() == 0
    layer.set_weights([])
    layer.backward(np.ones_like(layer(xs)))
    assert layer.grads == []
    assert layer.input_shape == [(None, 3, 2), (None, 3, 2)]
    assert layer.compute_output_shape([(3, 2), (3, 2)]) == layer.output_shape[1:]


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_dtype_is_the_layers(cls):
    xs = [np.arange(6).reshape(2, 3), np.ones((2, 3), bool)]  # integer and bool are cast
    y = cls()(xs)
    assert y.dtype == np.float32
    assert cls()([x.astype(np.float64) for x in xs]).dtype == np.float32
    assert cls(dtype="float64")(xs).dtype == np.float64


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_empty_batch(cls):
    layer = cls()
    y = layer([np.ones((0, 3, 2))] * (2 if cls is L.Subtract else 3))
    assert y.shape == (0, *layer.output_shape[1:]) and y.dtype == np.float32
    dxs = layer.backward(np.zeros(y.shape, np.float32))
    assert [dx.shape for dx in dxs] == [(0, 3, 2)] * len(layer.input_shape)
    assert all(dx.dtype == np.float32 for dx in dxs)


def test_lowercase_helpers():
    a, b = np.array([[1.0, -2.0]]), np.array([[3.0, 4.0]])
    np.testing.assert_array_equal(L.add([a, b]), [[4, 2]])
    np.testing.assert_array_equal(L.subtract([a, b]), [[-2, -6]])
    np.testing.assert_array_equal(L.multiply([a, b, b]), [[9, -32]])
    np.testing.assert_array_equal(L.average([a, b]), [[2, 1]])
    np.testing.assert_array_equal(L.maximum([a, b]), [[3, 4]])
    np.testing.assert_array_equal(L.minimum([a, b]), [[1, -2]])
    np.testing.assert_array_equal(L.concatenate([a, b]), [[1, -2, 3, 4]])
    assert L.concatenate([a, b], axis=1, dtype="float64").dtype == np.float64
    assert L.add([a, b], dtype="float64").dtype == np.float64
    with pytest.raises(ValueError, match=r"Add 'named_add': inputs must have the same shape"):
        L.add([a, np.ones((1, 3))], name="named_add")
    for name in ("add", "subtract", "multiply", "average", "maximum", "minimum", "concatenate"):
        assert name in L.__all__ and name.capitalize() in L.LAYER_CLASSES


def test_symbolic_tensors_build_a_graph_node():
    """On keras.Input tensors the layer builds for their shapes and returns a tensor."""
    a, b = graph.input_tensor((4, 4, 8)), graph.input_tensor((4, 4, 3))
    layer = L.Concatenate()
    y = layer([a, b])
    assert y.shape == (None, 4, 4, 11) and y.node.layer is layer and y.node.inputs == [a, b]
    assert layer.input_shape == [(None, 4, 4, 8), (None, 4, 4, 3)]
    assert L.add([a, a]).shape == (None, 4, 4, 8)
    with pytest.raises(ValueError, match=re.escape("got (4, 4, 8) and (4, 4, 3).")):
        L.Add(name="sym_add")([a, b])
    with pytest.raises(ValueError, match=r"'concatenate\w*' was built for inputs .* but is called"):
        layer([b, a])
    np.testing.assert_array_equal(layer([np.ones((1, 4, 4, 8)), np.ones((1, 4, 4, 3))]), 1.0)


def test_a_shared_layer_keeps_one_cache_per_call():
    """forward_with_cache / backward_with_cache (what graphs and tapes use): each call's gradient
    comes from that call's inputs, even after a later call of the same layer."""
    rng = np.random.default_rng(7)
    layer = L.Multiply(dtype="float64")
    x1, x2 = (
        [rng.normal(size=(2, 3)) for _ in range(2)],
        [rng.normal(size=(4, 3)) for _ in range(2)],
    )
    _, state1 = layer.forward_with_cache(x1)
    _, state2 = layer.forward_with_cache(x2)
    d1 = layer.backward_with_cache(np.ones((2, 3)), state1)
    np.testing.assert_array_equal(d1[0], x1[1])
    d2 = layer.backward_with_cache(np.ones((4, 3)), state2)
    np.testing.assert_array_equal(d2[1], x2[0])


def test_forward_backward_keep_the_list_protocol():
    """forward(xs) / backward(dy) -> list, also in a subclass that overrides them."""

    class LoudAdd(L.Add):
        def forward(self, xs, training=False):
            return super().forward(xs, training) * 2

        def backward(self, dy):
            return [2 * dx for dx in super().backward(dy)]

    layer = LoudAdd(dtype="float64")
    layer.build([(3,), (3,)])
    xs = [np.ones((2, 3)), np.ones((2, 3))]
    np.testing.assert_array_equal(layer.forward(xs), np.full((2, 3), 4.0))
    dxs = layer.backward(np.ones((2, 3)))
    assert len(dxs) == 2 and all((dx == 2).all() for dx in dxs)


def test_inside_a_composite_layer_gradients_flow_through_the_tape():
    """A layer whose call() merges two branches: the tape replays merge backwards (lists of dx)."""

    class TwoBranches(Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.d1, self.d2 = L.Dense(3), L.Dense(3)
            self.merges = [L.Add(), L.Maximum(), L.Multiply(), L.Subtract()]
            self.cat = L.Concatenate()

        def call(self, x):
            a, b = self.d1(x), self.d2(x)
            add, maximum, multiply, subtract = self.merges
            return self.cat([add([a, b]), maximum([a, b]), multiply([a, b, a]), subtract([b, a])])

    x = np.random.default_rng(8).normal(size=(4, 5))
    errors = gradcheck(TwoBranches(), x)
    assert len(errors) == 5 and "dx" in errors  # dx, and both Dense layers' kernel and bias
    assert max(errors.values()) < GRADCHECK_TOL, errors
