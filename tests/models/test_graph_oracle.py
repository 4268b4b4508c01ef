"""Graph models against PyTorch built with the same weights (float64 oracle, tests/torch_oracle.py).

For every case in graph_cases.py (each merge layer inside a model, fan-out, shared layers, nested
models, an Inception module, a ResNet stage, ResidualBlock in a graph), slidenet in float32 and in
float64: the outputs, every input gradient and every weight gradient after ``model(x)`` then
``model.backward(dy)``, with batch norm in training mode (batch statistics; the moving statistics
are checked too) and in inference mode. Then multi-output models trained one step with
loss_weights: the total loss and every gradient against torch's weighted sum of the losses.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from graph_cases import CASES, WITH_BN
from graph_torch import Torch, check_oracle, leaf_layers, randomize

import slidenet as keras
from slidenet import layers as L
from torch_oracle import assert_matches, leaf, to_nchw, to_numpy

DTYPES = ["float32", "float64"]
RUNS = [(name, False) for name in CASES] + [(name, True) for name in WITH_BN]


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize(("name", "training"), RUNS)
def test_graph_matches_torch(name, training, dt):
    model, torch_fn, xs = CASES[name](dt)
    label = f"{name}{' (training)' if training else ''}"
    check_oracle(label, model, torch_fn, xs, training=training)


def test_backward_twice_gives_the_same_gradients():
    """A second backward of the same call (no new forward) repeats, not accumulates."""
    model, _, xs = CASES["shared_dense"]("float64")
    dy = np.ones_like(model(xs))
    model.backward(dy)
    first = [g.copy() for layer in leaf_layers(model) for g in layer.grads]
    model.backward(dy)
    second = [g.copy() for layer in leaf_layers(model) for g in layer.grads]
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)


# ----- several outputs, loss_weights, one training step ------------------------------------------
def two_heads(dt, consumed=False):
    """Inputs a (4, 4, 1) and b (3,); a softmax head "out_a" and a linear "out_b" that also sees
    out_a when ``consumed`` (then out_a's gradient has two sources, and no fused loss)."""
    a, b = keras.Input((4, 4, 1), name="a", dtype=dt), keras.Input((3,), name="b", dtype=dt)
    conv = L.Conv2D(2, 3, activation="relu", dtype=dt)
    flat, cat = L.Flatten(dtype=dt), L.Concatenate(dtype=dt)
    trunk = L.Dense(4, activation="relu", dtype=dt)
    out_a = L.Dense(3, activation="softmax", name="out_a", dtype=dt)
    out_b = L.Dense(2, name="out_b", dtype=dt)
    h = trunk(cat([flat(conv(a)), b]))
    ya = out_a(h)
    yb = out_b(cat2([h, ya], dt) if consumed else h)
    model = keras.Model({"a": a, "b": b}, {"out_a": ya, "out_b": yb})
    randomize(model, seed=3)

    def torch_fn(T, ta, tb):
        th = T(trunk, T(cat, [T(flat, T(conv, ta)), tb]))
        tya = T(out_a, th)
        tyb = T(out_b, torch.cat([th, tya], dim=1) if consumed else th)
        return tya, tyb

    return model, torch_fn


def cat2(tensors, dt):
    return L.Concatenate(dtype=dt)(tensors)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("consumed", [False, True], ids=["separate", "out_a_feeds_out_b"])
def test_loss_weights_step_matches_torch(dt, consumed):
    model, torch_fn = two_heads(dt, consumed)
    model.compile(
        keras.optimizers.SGD(0.1),
        loss={"out_a": "sparse_categorical_crossentropy", "out_b": "mse"},
        loss_weights={"out_a": 0.7, "out_b": 2.5},
    )
    rng = np.random.default_rng(4)
    xa, xb = rng.standard_normal((5, 4, 4, 1)), rng.standard_normal((5, 3))
    ya, yb = rng.integers(0, 3, 5), rng.standard_normal((5, 2))

    T = Torch()
    tya, tyb = torch_fn(T, to_nchw(xa), leaf(xb))
    ce = F.nll_loss(torch.log(tya), leaf(ya))
    mse = ((tyb - leaf(yb, grad=False)) ** 2).mean()
    total = 0.7 * ce + 2.5 * mse
    total.backward()

    before = [w.copy() for w in model.get_weights()]
    x, y = {"a": xa.astype(dt), "b": xb.astype(dt)}, {"out_a": ya, "out_b": yb}
    loss, loss_a, loss_b = model.train_on_batch(x, y)  # Keras: total, then each output's
    assert_matches(np.asarray(loss, dt), total, f"{dt} total loss")
    assert_matches(np.asarray(loss_a, dt), ce, "out_a loss")
    assert_matches(np.asarray(loss_b, dt), mse, "out_b loss")
    for layer, leaves in T.params.values():
        for wname, t in leaves.items():
            g = layer.grads[list(layer.weight_names).index(wname)]
            assert g.dtype == np.dtype(dt)
            assert_matches(g, to_numpy(t.grad), f"{dt} {layer.name}/{wname}")
    # SGD moved every weight by -0.1 * its gradient
    for old, new, g in zip(before, model.get_weights(), [*_grads(model)], strict=True):
        np.testing.assert_allclose(new, old - 0.1 * g, rtol=1e-5, atol=1e-6)


def _grads(model):
    for layer in model.layers:
        yield from (g for g in layer.grads)


@pytest.mark.parametrize("dt", DTYPES)
def test_evaluate_reports_the_weighted_sum_and_each_output(dt):
    model, torch_fn = two_heads(dt)
    model.compile("sgd", loss=["sparse_categorical_crossentropy", "mse"], loss_weights=[0.25, 3.0])
    rng = np.random.default_rng(5)
    x = [rng.standard_normal((6, 4, 4, 1)), rng.standard_normal((6, 3))]
    y = [rng.integers(0, 3, 6), rng.standard_normal((6, 2))]
    with torch.no_grad():
        tya, tyb = torch_fn(Torch(), to_nchw(x[0]), leaf(x[1]))
        ce = F.nll_loss(torch.log(tya), leaf(y[0]))
        mse = ((tyb - leaf(y[1], grad=False)) ** 2).mean()
    total, loss_a, loss_b = model.evaluate(x, y, batch_size=6, verbose=0)
    for ours, ref, what in [
        (total, 0.25 * ce + 3 * mse, "loss"),
        (loss_a, ce, "a"),
        (loss_b, mse, "b"),
    ]:
        assert_matches(np.asarray(ours, dt), ref, what)
