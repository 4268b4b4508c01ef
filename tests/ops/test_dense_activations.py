"""dense and the activations (relu, sigmoid, tanh, softmax): examples, reference loops, PyTorch
oracle, gradient checks, dtypes."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from ops_helpers import (
    assert_close,
    assert_unmodified,
    check_directions,
    check_grads,
    distinct,
    from_torch,
)

from slidenet import ops
from slidenet.ops import reference
from torch_oracle import leaf

ACTIVATIONS = ["relu", "sigmoid", "tanh", "softmax"]
TORCH_ACTIVATIONS = {
    "relu": torch.relu,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "softmax": lambda t: torch.softmax(t, dim=-1),
}


def _fast(name):
    return getattr(ops, f"{name}_forward"), getattr(ops, f"{name}_backward")


def _inputs(rng, shape, dtype=np.float64):
    """Distinct values away from 0 (ReLU's kink), spread over about [-2, 2]."""
    size = int(np.prod(shape))
    return distinct(rng, shape, dtype, spacing=4.0 / size)


# ------------------------------------------------------------------------------------- golden


@pytest.mark.parametrize("impl", [ops, reference], ids=["fast", "reference"])
def test_dense_by_hand(impl):
    x = np.array([[1.0, 2.0], [3.0, -1.0]])
    w = np.array([[1.0, 0.0, 2.0], [1.0, -1.0, 0.5]])
    b = np.array([0.5, 0.0, -1.0])
    np.testing.assert_array_equal(impl.dense(x, w, b), [[3.5, -2.0, 2.0], [2.5, 1.0, 4.5]])
    np.testing.assert_array_equal(impl.dense(x, w), [[3.0, -2.0, 3.0], [2.0, 1.0, 5.5]])


@pytest.mark.parametrize("impl", [ops, reference], ids=["fast", "reference"])
def test_activation_values(impl):
    x = np.array([[-2.0, 0.0, 3.0]])
    np.testing.assert_array_equal(impl.relu(x), [[0.0, 0.0, 3.0]])
    np.testing.assert_allclose(impl.sigmoid(x), [[1 / (1 + np.e**2), 0.5, 1 / (1 + np.e**-3)]])
    np.testing.assert_allclose(impl.tanh(x), np.tanh(x))
    np.testing.assert_allclose(impl.softmax(np.array([[0.0, np.log(3.0)]])), [[0.25, 0.75]])


@pytest.mark.parametrize("impl", [ops, reference], ids=["fast", "reference"])
def test_sigmoid_and_softmax_are_stable_for_huge_inputs(impl):
    """No overflow warnings (warnings are errors here) and the right limits."""
    x = np.array([[-1000.0, 0.0, 1000.0]])
    np.testing.assert_array_equal(impl.sigmoid(x), [[0.0, 0.5, 1.0]])
    np.testing.assert_array_equal(impl.softmax(x), [[0.0, 0.0, 1.0]])
    np.testing.assert_allclose(impl.softmax(x + 1e4), impl.softmax(x))  # shift invariance
    y32 = impl.sigmoid(np.array([[-100.0, 100.0]], np.float32))
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32, [[0.0, 1.0]], rtol=0, atol=1e-30)


def test_softmax_rows_sum_to_one(rng):
    y = ops.softmax(rng.standard_normal((5, 7)) * 10)
    np.testing.assert_allclose(y.sum(axis=-1), 1.0, rtol=1e-12)
    assert (y > 0).all()


def test_dense_refuses_shapes_that_do_not_chain():
    with pytest.raises(ValueError, match=r"do not chain.*Flatten image inputs first"):
        ops.dense(np.zeros((2, 3)), np.zeros((4, 5)))
    with pytest.raises(ValueError, match="do not chain"):
        ops.dense(np.zeros((2, 3, 3, 1)), np.zeros((9, 5)))


# ------------------------------------------------------------------- fast path vs reference loops


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
def test_dense_matches_reference(bias, rng):
    x, w = rng.standard_normal((3, 5)), rng.standard_normal((5, 4))
    b = rng.standard_normal(4) if bias else None
    y, cache = ops.dense_forward(x, w, b)
    dy = rng.standard_normal(y.shape)
    dx, dw, db = ops.dense_backward(dy, cache)
    rdx, rdw, rdb = reference.dense_backward(x, w, dy)
    assert_close(y, reference.dense(x, w, b), op="dense", check="ref-f64")
    assert_close(dx, rdx, op="dense", check="ref-f64")
    assert_close(dw, rdw, op="dense", check="ref-f64")
    if bias:
        assert_close(db, rdb, op="dense", check="ref-f64")
    else:
        assert db is None


@pytest.mark.parametrize("name", ACTIVATIONS)
@pytest.mark.parametrize("shape", [(3, 5), (2, 3, 4, 5)], ids=["2d", "4d"])
def test_activation_matches_reference(name, shape, rng):
    x = _inputs(rng, shape)
    forward, backward = _fast(name)
    y, cache = forward(x)
    dy = rng.standard_normal(shape)
    ref_y = getattr(reference, name)(x.reshape(-1, shape[-1])).reshape(shape)
    ref_dx = getattr(reference, f"{name}_backward")(
        x.reshape(-1, shape[-1]), dy.reshape(-1, shape[-1])
    )
    assert_close(y, ref_y, op=name, check="ref-f64")
    assert_close(backward(dy, cache), ref_dx.reshape(shape), op=name, check="ref-f64")
    np.testing.assert_array_equal(getattr(ops, name)(x), y)


# ------------------------------------------------------------------------------- PyTorch oracle


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
def test_dense_matches_torch(bias, dtype, rng):
    x, w = rng.standard_normal((4, 6)).astype(dtype), rng.standard_normal((6, 3)).astype(dtype)
    b = rng.standard_normal(3).astype(dtype) if bias else None
    y, cache = ops.dense_forward(x, w, b)
    dy = rng.standard_normal(y.shape).astype(dtype)
    grads = ops.dense_backward(dy, cache)
    xt, wt = leaf(x), leaf(w.T)
    bt = leaf(b) if bias else None
    yt = F.linear(xt, wt, bt)
    (yt * leaf(dy, grad=False)).sum().backward()
    check = f"torch-{np.dtype(dtype).name}"
    assert_close(y, yt, op="dense y", check=check)
    assert_close(grads[0], xt.grad, op="dense dx", check=check)
    assert_close(grads[1], from_torch(wt.grad).T, op="dense dw", check=check)
    if bias:
        assert_close(grads[2], bt.grad, op="dense db", check=check)
    assert all(g.dtype == dtype for g in (y, *grads) if g is not None)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_matches_torch(name, dtype, rng):
    x = (rng.standard_normal((4, 7)) * 3).astype(dtype)
    forward, backward = _fast(name)
    y, cache = forward(x)
    dy = rng.standard_normal(x.shape).astype(dtype)
    xt = leaf(x)
    yt = TORCH_ACTIVATIONS[name](xt)
    (yt * leaf(dy, grad=False)).sum().backward()
    check = f"torch-{np.dtype(dtype).name}"
    assert_close(y, yt, op=f"{name} y", check=check)
    assert_close(backward(dy, cache), xt.grad, op=f"{name} dx", check=check)


# ------------------------------------------------------------------------ numerical gradients


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("size", ["tiny", "large"])
def test_dense_gradcheck(size, bias, rng):
    """All entries for a (3, 4) @ (4, 5) layer; random directions for (16, 64) @ (64, 10)."""
    n, d_in, units = (3, 4, 5) if size == "tiny" else (16, 64, 10)
    inputs = {"x": rng.standard_normal((n, d_in)), "w": rng.standard_normal((d_in, units))}
    if bias:
        inputs["b"] = rng.standard_normal(units)
    y, cache = ops.dense_forward(**inputs)
    g = rng.standard_normal(y.shape)
    dx, dw, db = ops.dense_backward(g, cache)
    grads = {"x": dx, "w": dw, "b": db} if bias else {"x": dx, "w": dw}

    def f(x, w, b=None):
        return float(np.sum(ops.dense(x, w, b) * g))

    if size == "tiny":
        check_grads(f, inputs, grads, op="dense")
    else:
        check_directions(f, inputs, grads, rng, op="dense")


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_gradcheck(name, rng):
    forward, backward = _fast(name)
    for shape in [(3, 5), (8, 10)]:
        x = _inputs(rng, shape)
        g = rng.standard_normal(shape)
        dx = backward(g, forward(x)[1])

        def f(x, g=g):
            return float(np.sum(forward(x)[0] * g))

        if len(x.flat) <= 20:
            check_grads(f, {"x": x}, {"x": dx}, op=name)
        else:
            check_directions(f, {"x": x}, {"x": dx}, rng, op=name)


# ---------------------------------------------------------------------------- dtype and purity


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_dtype_preserved_and_inputs_untouched(name, dtype, rng):
    forward, backward = _fast(name)
    x = rng.standard_normal((3, 4)).astype(dtype)
    y, cache = assert_unmodified(forward, x)
    assert not np.shares_memory(y, x)
    dy = rng.standard_normal(x.shape).astype(dtype)
    dx = assert_unmodified(lambda dy: backward(dy, cache), dy)
    assert y.dtype == dx.dtype == getattr(ops, name)(x).dtype == dtype


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dense_dtype_preserved_and_inputs_untouched(dtype, rng):
    x, w, b = (rng.standard_normal(s).astype(dtype) for s in [(3, 4), (4, 2), (2,)])
    y, cache = assert_unmodified(ops.dense_forward, x, w, b)
    dy = rng.standard_normal(y.shape).astype(dtype)
    grads = assert_unmodified(lambda dy: ops.dense_backward(dy, cache), dy)
    assert all(a.dtype == dtype for a in (y, *grads))
    assert [a.shape for a in grads] == [x.shape, w.shape, b.shape]
