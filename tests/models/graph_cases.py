"""Graph models written twice: once with slidenet layers, once as the torch mirror of the same math.

Each builder takes a dtype and returns a :class:`Case`: the model (every layer in that dtype, with
random weights), ``torch_fn(T, *inputs)`` computing the same outputs with
:class:`graph_torch.Torch` on channels-first tensors, and the input batches. The oracle tests
(test_graph_oracle.py) and the finite-difference tests (test_graph_numgrad.py) run the same cases.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from graph_torch import randomize

import slidenet as keras
from slidenet import layers as L

N = 3  # examples per batch: batch norm needs more than one


class Case(NamedTuple):
    model: object
    torch_fn: object
    xs: list


def inputs(dt, *shapes, seed=0) -> list:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((N, *s)).astype(dt) for s in shapes]


def _finish(model, torch_fn, xs, seed=0) -> Case:
    randomize(model, seed)
    return Case(model, torch_fn, xs)


# ----- merge layers inside a model ------------------------------------------------------------
MERGES = {  # name -> (class, number of inputs, constructor arguments)
    "add": (L.Add, 3, {}),
    "subtract": (L.Subtract, 2, {}),
    "multiply": (L.Multiply, 3, {}),
    "average": (L.Average, 3, {}),
    "maximum": (L.Maximum, 3, {}),
    "minimum": (L.Minimum, 3, {}),
    "concatenate": (L.Concatenate, 3, {}),
    "concatenate_axis1": (L.Concatenate, 2, {"axis": 1}),
}


def merge_case(name, dt) -> Case:
    """Two inputs, three conv branches (input a fans out to two), the merge, Flatten, Dense."""
    cls, n, kwargs = MERGES[name]
    a, b = keras.Input((3, 3, 2), dtype=dt), keras.Input((3, 3, 2), dtype=dt)
    ca = L.Conv2D(3, 3, padding="same", dtype=dt)
    cb = L.Conv2D(3, 1, dtype=dt)
    cc = L.Conv2D(3, 1, activation="relu", dtype=dt)
    merge, flat, head = cls(**kwargs, dtype=dt), L.Flatten(dtype=dt), L.Dense(2, dtype=dt)
    branches = [(ca, 0), (cb, 1), (cc, 0)][:n]  # (layer, which input)
    model = keras.Model([a, b], head(flat(merge([c([a, b][i]) for c, i in branches]))))

    def torch_fn(T, ta, tb):
        return T(head, T(flat, T(merge, [T(c, [ta, tb][i]) for c, i in branches])))

    return _finish(model, torch_fn, inputs(dt, (3, 3, 2), (3, 3, 2)))


# ----- fan-out, shared layers, nested models ----------------------------------------------------
def fan_out(dt) -> Case:
    """h feeds three layers (two convs and the Add); x feeds two convs."""
    x = keras.Input((4, 4, 2), dtype=dt)
    c0 = L.Conv2D(3, 3, padding="same", activation="relu", dtype=dt)
    c1, c2 = L.Conv2D(3, 1, dtype=dt), L.Conv2D(3, 3, padding="same", dtype=dt)
    c3 = L.Conv2D(3, 1, activation="relu", dtype=dt)
    add, gap, head = L.Add(dtype=dt), L.GlobalAveragePooling2D(dtype=dt), L.Dense(2, dtype=dt)
    h = c0(x)
    model = keras.Model(x, head(gap(add([h, c1(h), c2(h), c3(x)]))))

    def torch_fn(T, tx):
        th = T(c0, tx)
        return T(head, T(gap, T(add, [th, T(c1, th), T(c2, th), T(c3, tx)])))

    return _finish(model, torch_fn, inputs(dt, (4, 4, 2)))


def shared_dense(dt) -> Case:
    """One Dense on two inputs, another applied twice in a row; its grads sum over the calls."""
    a, b = keras.Input((4,), dtype=dt), keras.Input((4,), dtype=dt)
    d, d2 = L.Dense(3, activation="relu", dtype=dt), L.Dense(3, dtype=dt)
    cat, head = L.Concatenate(dtype=dt), L.Dense(2, dtype=dt)
    model = keras.Model([a, b], head(cat([d2(d2(d(a))), d(b)])))

    def torch_fn(T, ta, tb):
        return T(head, T(cat, [T(d2, T(d2, T(d, ta))), T(d, tb)]))

    return _finish(model, torch_fn, inputs(dt, (4,), (4,)), seed=1)


def shared_conv(dt, kernel_size=1) -> Case:
    """One Conv2D on two inputs and again on its own output (three calls)."""
    a, b = keras.Input((3, 3, 2), dtype=dt), keras.Input((3, 3, 2), dtype=dt)
    conv = L.Conv2D(2, kernel_size, padding="same", activation="relu", dtype=dt)
    sub, flat, head = L.Subtract(dtype=dt), L.Flatten(dtype=dt), L.Dense(2, dtype=dt)
    model = keras.Model([a, b], head(flat(sub([conv(conv(a)), conv(b)]))))

    def torch_fn(T, ta, tb):
        return T(head, T(flat, T(sub, [T(conv, T(conv, ta)), T(conv, tb)])))

    return _finish(model, torch_fn, inputs(dt, (3, 3, 2), (3, 3, 2)))


def nested(dt) -> Case:
    """A model inside a model inside a model, each called once."""
    i = keras.Input((4, 4, 2), dtype=dt)
    ci = L.Conv2D(3, 3, padding="same", activation="relu", dtype=dt)
    inner = keras.Model(i, ci(i), name="inner")
    j = keras.Input((4, 4, 2), dtype=dt)
    cj, add = L.Conv2D(3, 1, dtype=dt), L.Add(dtype=dt)
    middle = keras.Model(j, add([inner(j), cj(j)]), name="middle")
    x = keras.Input((4, 4, 2), dtype=dt)
    c0, gap, head = (
        L.Conv2D(2, 1, dtype=dt),
        L.GlobalAveragePooling2D(dtype=dt),
        L.Dense(2, dtype=dt),
    )
    model = keras.Model(x, head(gap(middle(c0(x)))))

    def torch_fn(T, tx):
        h = T(c0, tx)
        return T(head, T(gap, T(add, [T(ci, h), T(cj, h)])))

    return _finish(model, torch_fn, inputs(dt, (4, 4, 2)))


def nested_shared(dt) -> Case:
    """One nested model called on two tensors (its layers' grads sum over both calls)."""
    i = keras.Input((4,), dtype=dt)
    d1, d2 = L.Dense(5, activation="relu", dtype=dt), L.Dense(3, dtype=dt)
    inner = keras.Model(i, d2(d1(i)), name="inner")
    a, b = keras.Input((4,), dtype=dt), keras.Input((4,), dtype=dt)
    mul, head = L.Multiply(dtype=dt), L.Dense(2, activation="softmax", dtype=dt)
    model = keras.Model([a, b], [head(mul([inner(a), inner(b)])), inner(b)])

    def torch_fn(T, ta, tb):
        ib = T(d2, T(d1, tb))
        return [T(head, T(mul, [T(d2, T(d1, ta)), ib])), T(d2, T(d1, tb))]

    return _finish(model, torch_fn, inputs(dt, (4,), (4,)))


def nested_sequential(dt) -> Case:
    """A Sequential encoder shared by two inputs of a functional model."""
    conv, pool = L.Conv2D(2, 3, activation="relu", dtype=dt), L.MaxPooling2D(2, dtype=dt)
    flat = L.Flatten(dtype=dt)
    encoder = keras.Sequential([keras.Input((6, 6, 1), dtype=dt), conv, pool, flat])
    a, b = keras.Input((6, 6, 1), dtype=dt), keras.Input((6, 6, 1), dtype=dt)
    sub, head = L.Subtract(dtype=dt), L.Dense(1, dtype=dt)
    model = keras.Model([a, b], head(sub([encoder(a), encoder(b)])))

    def torch_fn(T, ta, tb):
        ea, eb = (T(flat, T(pool, T(conv, t))) for t in (ta, tb))
        return T(head, T(sub, [ea, eb]))

    return _finish(model, torch_fn, inputs(dt, (6, 6, 1), (6, 6, 1)))


# ----- blocks of real architectures -------------------------------------------------------------
def inception(dt) -> Case:
    """GoogLeNet's module: 1x1 | 1x1 -> 3x3 | 1x1 -> 5x5 | 3x3 max pool -> 1x1, concatenated; then
    batch norm, ReLU, global average pooling and a softmax head."""
    x = keras.Input((6, 6, 3), dtype=dt)

    def conv(k, f):
        return L.Conv2D(k, f, padding="same", activation="relu", dtype=dt)

    b1, r3, b3, r5, b5, bp = conv(2, 1), conv(2, 1), conv(3, 3), conv(1, 1), conv(2, 5), conv(2, 1)
    pool = L.MaxPooling2D(3, strides=1, padding="same", dtype=dt)
    cat, bn, relu = L.Concatenate(dtype=dt), L.BatchNormalization(dtype=dt), L.ReLU(dtype=dt)
    gap, head = L.GlobalAveragePooling2D(dtype=dt), L.Dense(3, activation="softmax", dtype=dt)
    y = cat([b1(x), b3(r3(x)), b5(r5(x)), bp(pool(x))])
    model = keras.Model(x, head(gap(relu(bn(y)))))

    def torch_fn(T, t):
        ty = T(cat, [T(b1, t), T(b3, T(r3, t)), T(b5, T(r5, t)), T(bp, T(pool, t))])
        return T(head, T(gap, T(relu, T(bn, ty))))

    return _finish(model, torch_fn, inputs(dt, (6, 6, 3)))


def residual(dt) -> Case:
    """A ResNet stage: a stride-2 block with a projection shortcut, then an identity block."""
    x = keras.Input((6, 6, 3), dtype=dt)

    def conv(f, s=1):
        return L.Conv2D(4, f, strides=s, padding="same", use_bias=False, dtype=dt)

    def bn():
        return L.BatchNormalization(momentum=0.9, dtype=dt)

    c1, n1, c2, n2, sc, ns = conv(3, 2), bn(), conv(3), bn(), conv(1, 2), bn()
    c3, n3, c4, n4 = conv(3), bn(), conv(3), bn()
    r = [L.ReLU(dtype=dt) for _ in range(4)]
    add1, add2 = L.Add(dtype=dt), L.Add(dtype=dt)
    gap, head = L.GlobalAveragePooling2D(dtype=dt), L.Dense(2, dtype=dt)
    h = r[1](add1([n2(c2(r[0](n1(c1(x))))), ns(sc(x))]))
    h = r[3](add2([n4(c4(r[2](n3(c3(h))))), h]))
    model = keras.Model(x, head(gap(h)))

    def torch_fn(T, t):
        th = T(r[1], T(add1, [T(n2, T(c2, T(r[0], T(n1, T(c1, t))))), T(ns, T(sc, t))]))
        th = T(r[3], T(add2, [T(n4, T(c4, T(r[2], T(n3, T(c3, th))))), th]))
        return T(head, T(gap, th))

    return _finish(model, torch_fn, inputs(dt, (6, 6, 3)))


def residual_block_layer(dt) -> Case:
    """layers.ResidualBlock (a composite layer: no backward of its own) inside a graph."""
    x = keras.Input((5, 5, 3), dtype=dt)
    block, gap, head = (
        L.ResidualBlock(4, strides=2, dtype=dt),
        L.GlobalAveragePooling2D(dtype=dt),
        L.Dense(2, dtype=dt),
    )
    model = keras.Model(x, head(gap(block(x))))

    def torch_fn(T, t):
        main = T(block.bn2, T(block.conv2, T(block.relu1, T(block.bn1, T(block.conv1, t)))))
        short = T(block.shortcut_bn, T(block.shortcut_conv, t))
        return T(head, T(gap, T(block.relu2, T(block.add, [main, short]))))

    return _finish(model, torch_fn, inputs(dt, (5, 5, 3)))


CASES = {
    **{f"merge_{name}": (lambda dt, name=name: merge_case(name, dt)) for name in MERGES},
    "fan_out": fan_out,
    "shared_dense": shared_dense,
    "shared_conv_1x1": shared_conv,
    "shared_conv_3x3": lambda dt: shared_conv(dt, kernel_size=3),
    "nested_sequential": nested_sequential,
    "nested": nested,
    "nested_shared": nested_shared,
    "inception": inception,
    "residual": residual,
    "residual_block_layer": residual_block_layer,
}
#: cases with batch normalization: run in training mode (batch statistics) and inference mode
WITH_BN = ("inception", "residual", "residual_block_layer")
