"""PyTorch as the oracle for the layers: forward, input gradient and every parameter gradient.

torch is imported at the top on purpose: without it this module fails to import, so a missing test
dependency shows up as a failure, not a skip. slidenet is channels-last (NHWC / NLC), torch
channels-first: the torch functions below take channels-last leaves and hand torch's ops contiguous
channels-first tensors (torch_oracle.nchw / nhwc). The oracle always computes in float64
(tests/torch_oracle.py); slidenet runs each case in float64 (tight tolerance) and float32.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from slidenet import layers as L
from torch_oracle import leaf, nchw, nhwc, to_numpy

DTYPES = [np.float64, np.float32]
TOL = {np.float64: {"rtol": 1e-9, "atol": 1e-11}, np.float32: {"rtol": 2e-5, "atol": 2e-5}}


def close(ours, theirs, dtype, what):
    """slidenet's result (in ``dtype``) against the float64 oracle, at ``dtype``'s tolerance."""
    if isinstance(theirs, torch.Tensor):
        assert theirs.dtype == torch.float64, f"{what}: the oracle ran in {theirs.dtype}"
        theirs = to_numpy(theirs)
    assert ours.shape == theirs.shape, f"{what}: shape {ours.shape} vs torch {theirs.shape}"
    assert ours.dtype == dtype, f"{what}: dtype {ours.dtype}"
    np.testing.assert_allclose(ours, theirs, err_msg=what, **TOL[dtype])


def kernel_oihw(w):
    """slidenet's (H, W, in, out) conv kernel -> torch's contiguous (out, in, H, W)."""
    return w.permute(3, 2, 0, 1).contiguous()


def same_pads(n, f, s, d=1):
    """TensorFlow's 'same' rule, written out independently of slidenet: (before, after)."""
    out = math.ceil(n / s)
    total = max((out - 1) * s + (f - 1) * d + 1 - n, 0)
    return total // 2, total - total // 2


TORCH_ACT = {
    "linear": lambda z, axis: z,
    "relu": lambda z, axis: torch.relu(z),
    "sigmoid": lambda z, axis: torch.sigmoid(z),
    "tanh": lambda z, axis: torch.tanh(z),
    "softmax": lambda z, axis: torch.softmax(z, dim=axis),
}


def run_both(layer, x, dtype, torch_fn, training=False, seed=1):
    """Forward and backward through ``layer`` and ``torch_fn(x_t, *weights_t)`` with the same dy.

    Returns (y, dx, grads) of both sides; ``torch_fn`` gets float64 NHWC leaves (the layouts of x
    and of slidenet's weights) and returns NHWC.
    """
    rng = np.random.default_rng(seed)
    x = x.astype(dtype)
    layer.build(x.shape[1:])
    layer.set_weights([rng.normal(size=w.shape) for w in layer.weights])
    y = layer(x, training=training)
    dy = rng.normal(size=y.shape).astype(dtype)
    dx = layer.backward(dy)

    xt = leaf(x)
    wts = [leaf(w) for w in layer.weights]
    yt = torch_fn(xt, *wts)
    yt.backward(leaf(dy, grad=False))
    return (y, dx, layer.grads), (yt, xt.grad, [w.grad for w in wts])


def compare(layer, x, dtype, torch_fn, what, training=False):
    (y, dx, grads), (yt, dxt, gradst) = run_both(layer, x, dtype, torch_fn, training)
    close(y, yt, dtype, f"{what} y")
    close(dx, dxt, dtype, f"{what} dx")
    assert len(grads) == len(gradst)
    for name, g, gt in zip(layer.weight_names, grads, gradst, strict=True):
        close(g, gt, dtype, f"{what} d{name}")


# ----- Conv2D ---------------------------------------------------------------------------------
CONV2D_CASES = {
    # id: (constructor kwargs, input shape)
    "F3-S1-valid": (dict(filters=3, kernel_size=3), (2, 6, 5, 2)),
    "F5-S1-same": (dict(filters=2, kernel_size=5, padding="same"), (2, 6, 6, 3)),
    "F3-S2-same": (dict(filters=2, kernel_size=3, strides=2, padding="same"), (2, 8, 7, 2)),
    "F2-S2-same-even": (dict(filters=2, kernel_size=2, strides=2, padding="same"), (1, 5, 6, 1)),
    "F3-S2-valid-drop": (dict(filters=2, kernel_size=3, strides=2), (2, 8, 8, 1)),
    "F3-P1": (dict(filters=2, kernel_size=3, padding=1), (2, 4, 5, 2)),
    "F3-P(2,0)-S(1,2)": (
        dict(filters=2, kernel_size=3, padding=(2, 0), strides=(1, 2)),
        (1, 4, 7, 2),
    ),
    "F(2,3)-asym-pad": (
        dict(filters=3, kernel_size=(2, 3), padding=((1, 0), (2, 1))),
        (2, 4, 5, 2),
    ),
    "F3-D2": (dict(filters=2, kernel_size=3, dilation_rate=2), (2, 7, 6, 1)),
    "F3-D(1,2)-same": (
        dict(filters=2, kernel_size=3, dilation_rate=(1, 2), padding="same"),
        (1, 5, 6, 2),
    ),
    "F(1,3)-rect": (dict(filters=2, kernel_size=(1, 3), strides=(1, 2)), (2, 3, 7, 2)),
    "relu": (dict(filters=3, kernel_size=2, activation="relu"), (2, 4, 4, 2)),
    "sigmoid": (dict(filters=2, kernel_size=3, activation="sigmoid", padding="same"), (2, 4, 4, 1)),
    "tanh": (dict(filters=2, kernel_size=2, activation="tanh"), (2, 3, 3, 2)),
    "softmax": (dict(filters=4, kernel_size=2, activation="softmax"), (2, 3, 3, 2)),
    "no-bias": (dict(filters=2, kernel_size=2, use_bias=False), (2, 3, 4, 2)),
}


def torch_conv2d(cfg, in_hw):
    ks = cfg["kernel_size"]
    fh, fw = (ks, ks) if isinstance(ks, int) else ks
    st = cfg.get("strides", 1)
    sh, sw = (st, st) if isinstance(st, int) else st
    dl = cfg.get("dilation_rate", 1)
    dh, dw = (dl, dl) if isinstance(dl, int) else dl
    pad = cfg.get("padding", "valid")
    if pad == "valid":
        pads = ((0, 0), (0, 0))
    elif pad == "same":
        pads = (same_pads(in_hw[0], fh, sh, dh), same_pads(in_hw[1], fw, sw, dw))
    elif isinstance(pad, int):
        pads = ((pad, pad), (pad, pad))
    elif isinstance(pad[0], int):
        pads = ((pad[0], pad[0]), (pad[1], pad[1]))
    else:
        pads = pad
    act = TORCH_ACT[cfg.get("activation") or "linear"]

    def fn(x, w, b=None):
        xc = F.pad(nchw(x), (pads[1][0], pads[1][1], pads[0][0], pads[0][1]))
        z = F.conv2d(xc, kernel_oihw(w), b, stride=(sh, sw), dilation=(dh, dw))
        return nhwc(act(z, 1))

    return fn


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("case", list(CONV2D_CASES))
def test_conv2d_matches_torch(case, dtype):
    cfg, shape = CONV2D_CASES[case]
    x = np.random.default_rng(0).normal(size=shape)
    layer = L.Conv2D(**cfg, dtype=np.dtype(dtype).name)
    compare(layer, x, dtype, torch_conv2d(cfg, shape[1:3]), f"Conv2D {case}")


# ----- Conv1D ---------------------------------------------------------------------------------
CONV1D_CASES = {
    "F3-valid": (dict(filters=3, kernel_size=3), (2, 9, 2)),
    "F4-S2-same": (dict(filters=2, kernel_size=4, strides=2, padding="same"), (2, 9, 3)),
    "F3-D2": (dict(filters=2, kernel_size=3, dilation_rate=2), (2, 9, 1)),
    "F3-P2": (dict(filters=2, kernel_size=3, padding=2), (1, 5, 2)),
    "F3-P(0,2)-S2": (dict(filters=2, kernel_size=3, padding=(0, 2), strides=2), (2, 6, 2)),
    "relu": (dict(filters=3, kernel_size=3, activation="relu"), (2, 7, 2)),
    "softmax": (dict(filters=3, kernel_size=2, activation="softmax"), (2, 5, 2)),
}


def torch_conv1d(cfg, length):
    f, s = cfg["kernel_size"], cfg.get("strides", 1)
    d, pad = cfg.get("dilation_rate", 1), cfg.get("padding", "valid")
    pads = (
        {"valid": (0, 0), "same": same_pads(length, f, s, d)}.get(pad)
        if isinstance(pad, str)
        else ((pad, pad) if isinstance(pad, int) else pad)
    )
    act = TORCH_ACT[cfg.get("activation") or "linear"]

    def fn(x, w, b):
        xc = F.pad(nchw(x), pads)
        z = F.conv1d(xc, w.permute(2, 1, 0).contiguous(), b, stride=s, dilation=d)
        return nhwc(act(z, 1))

    return fn


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("case", list(CONV1D_CASES))
def test_conv1d_matches_torch(case, dtype):
    cfg, shape = CONV1D_CASES[case]
    x = np.random.default_rng(0).normal(size=shape)
    layer = L.Conv1D(**cfg, dtype=np.dtype(dtype).name)
    compare(layer, x, dtype, torch_conv1d(cfg, shape[1]), f"Conv1D {case}")


# ----- Dense ----------------------------------------------------------------------------------
DENSE_CASES = {
    "linear": (dict(units=4), (5, 6)),
    "relu": (dict(units=4, activation="relu"), (5, 6)),
    "sigmoid": (dict(units=1, activation="sigmoid"), (5, 3)),
    "tanh": (dict(units=3, activation="tanh"), (5, 3)),
    "softmax": (dict(units=5, activation="softmax"), (4, 6)),
    "no-bias": (dict(units=3, use_bias=False), (4, 6)),
    "3d-input": (dict(units=3, activation="relu"), (2, 4, 5)),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("case", list(DENSE_CASES))
def test_dense_matches_torch(case, dtype):
    cfg, shape = DENSE_CASES[case]
    act = TORCH_ACT[cfg.get("activation") or "linear"]

    def fn(x, w, b=None):
        return act(F.linear(x, w.T.contiguous(), b), -1)

    x = np.random.default_rng(0).normal(size=shape)
    compare(L.Dense(**cfg, dtype=np.dtype(dtype).name), x, dtype, fn, f"Dense {case}")


# ----- activation layers ------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("name", ["relu", "sigmoid", "tanh", "softmax", "linear"])
def test_activation_layers_match_torch(name, dtype):
    x = np.random.default_rng(0).normal(size=(3, 2, 5)) * 3
    compare(
        L.Activation(name, dtype=np.dtype(dtype).name),
        x,
        dtype,
        lambda xt: TORCH_ACT[name](xt, -1),
        f"Activation {name}",
    )
    if name == "relu":
        compare(L.ReLU(dtype=np.dtype(dtype).name), x, dtype, torch.relu, "ReLU")


# ----- pooling --------------------------------------------------------------------------------
def torch_pool2d(kind, pool, strides, padding, in_hw):
    (ph, pw), (sh, sw) = pool, strides
    if padding == "same":
        (pt, pb), (pl, pr) = same_pads(in_hw[0], ph, sh), same_pads(in_hw[1], pw, sw)
    else:
        pt = pb = pl = pr = 0

    def fn(x):
        xc = nchw(x)
        if kind == "max":
            z = F.max_pool2d(F.pad(xc, (pl, pr, pt, pb), value=-math.inf), pool, strides)
        else:  # sums of the zero-padded input; 'avg' divides by the real elements per window
            ones = torch.ones_like(xc[:1, :1])
            area = ph * pw
            z = F.avg_pool2d(F.pad(xc, (pl, pr, pt, pb)), pool, strides) * area
            if kind == "avg":
                z = z / (F.avg_pool2d(F.pad(ones, (pl, pr, pt, pb)), pool, strides) * area)
        return nhwc(z)

    return fn


POOL2D_CASES = {
    "P2": ((2, 2), None, "valid", (2, 4, 6, 3)),
    "P2-drop": ((2, 2), None, "valid", (2, 5, 5, 2)),
    "P2-same": ((2, 2), None, "same", (2, 5, 5, 2)),
    "P3-S2-overlap": ((3, 3), (2, 2), "valid", (2, 7, 7, 2)),
    "P3-S2-same": ((3, 3), (2, 2), "same", (2, 6, 5, 1)),
    "P3-S1-same": ((3, 3), (1, 1), "same", (1, 4, 4, 2)),
    "P(2,3)-S(1,2)": ((2, 3), (1, 2), "valid", (2, 4, 7, 2)),
}
POOL2D_LAYERS = {"max": L.MaxPooling2D, "avg": L.AveragePooling2D, "sum": L.SumPooling2D}


def distinct_values(shape, seed=0):
    """A random arrangement of well separated values (no ties in any max)."""
    n = int(np.prod(shape))
    return np.random.default_rng(seed).permutation(np.linspace(-2, 2, n)).reshape(shape)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("kind", list(POOL2D_LAYERS))
@pytest.mark.parametrize("case", list(POOL2D_CASES))
def test_pool2d_matches_torch(case, kind, dtype):
    pool, strides, padding, shape = POOL2D_CASES[case]
    layer = POOL2D_LAYERS[kind](pool, strides, padding, dtype=np.dtype(dtype).name)
    fn = torch_pool2d(kind, pool, strides or pool, padding, shape[1:3])
    compare(layer, distinct_values(shape), dtype, fn, f"{kind} pool {case}")


POOL1D_CASES = {
    "P2": (2, None, "valid", (2, 8, 3)),
    "P2-same": (2, None, "same", (2, 7, 2)),
    "P3-S2-overlap": (3, 2, "valid", (2, 9, 2)),
    "P3-S2-same": (3, 2, "same", (2, 8, 1)),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("case", list(POOL1D_CASES))
def test_pool1d_matches_torch(case, kind, dtype):
    p, s, padding, shape = POOL1D_CASES[case]
    cls = L.MaxPooling1D if kind == "max" else L.AveragePooling1D
    layer = cls(p, s, padding, dtype=np.dtype(dtype).name)
    fn2d = torch_pool2d(kind, (1, p), (1, s or p), padding, (1, shape[1]))
    compare(
        layer,
        distinct_values(shape),
        dtype,
        lambda x: fn2d(x[:, None])[:, 0],
        f"{kind} pool1d {case}",
    )


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize(
    "cls, shape",
    [
        (L.GlobalMaxPooling2D, (2, 3, 4, 3)),
        (L.GlobalAveragePooling2D, (2, 3, 4, 3)),
        (L.GlobalMaxPooling1D, (2, 6, 3)),
        (L.GlobalAveragePooling1D, (2, 6, 3)),
    ],
)
def test_global_pooling_matches_torch(cls, shape, dtype):
    axes = tuple(range(1, len(shape) - 1))
    if "Max" in cls.__name__:

        def fn(x):
            return x.amax(dim=axes)
    else:

        def fn(x):
            return x.mean(dim=axes)

    compare(cls(dtype=np.dtype(dtype).name), distinct_values(shape), dtype, fn, cls.__name__)


# ----- BatchNormalization ---------------------------------------------------------------------
def bn_setup(shape, dtype, momentum=0.9, seed=3):
    rng = np.random.default_rng(seed)
    x = (rng.normal(size=shape) * 2 + 0.5).astype(dtype)
    d = shape[-1]
    stats = {
        "gamma": rng.uniform(0.5, 1.5, d),
        "beta": rng.normal(size=d),
        "moving_mean": rng.normal(size=d),
        "moving_variance": rng.uniform(0.5, 2.0, d),
    }
    stats = {k: v.astype(dtype) for k, v in stats.items()}
    layer = L.BatchNormalization(momentum=momentum, epsilon=1e-3, dtype=np.dtype(dtype).name)
    layer.build(shape[1:])
    layer.set_weights([stats[n] for n in layer.weight_names])
    dy = rng.normal(size=shape).astype(dtype)
    return layer, x, dy, stats


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("shape", [(4, 3, 3, 2), (6, 3), (3, 5, 2)], ids=["NHWC", "ND", "NLC"])
def test_batchnorm_training_matches_torch(shape, dtype):
    momentum = 0.9
    layer, x, dy, s = bn_setup(shape, dtype, momentum)
    y = layer(x, training=True)
    dx = layer.backward(dy)
    dgamma, dbeta, none1, none2 = layer.grads
    assert none1 is None and none2 is None

    xt, gt, bt = leaf(x), leaf(s["gamma"]), leaf(s["beta"])
    rm, rv = leaf(s["moving_mean"], grad=False), leaf(s["moving_variance"], grad=False)
    yt = F.batch_norm(nchw(xt), rm, rv, gt, bt, training=True, momentum=1 - momentum, eps=1e-3)
    yt = nhwc(yt)
    yt.backward(leaf(dy, grad=False))
    close(y, yt, dtype, "BN train y")
    close(dx, xt.grad, dtype, "BN train dx")
    close(dgamma, gt.grad, dtype, "BN train dgamma")
    close(dbeta, bt.grad, dtype, "BN train dbeta")

    # running statistics, Keras' convention: moving = m * moving + (1 - m) * batch statistic
    axes = tuple(range(x.ndim - 1))
    x64 = x.astype(np.float64)
    want_mean = momentum * s["moving_mean"] + (1 - momentum) * x64.mean(axis=axes)
    want_var = momentum * s["moving_variance"] + (1 - momentum) * x64.var(axis=axes)  # biased
    close(layer.moving_mean, rm, dtype, "BN moving_mean vs torch running_mean")
    close(layer.moving_mean, want_mean.astype(dtype), dtype, "BN moving_mean vs formula")
    close(layer.moving_variance, want_var.astype(dtype), dtype, "BN moving_variance vs formula")
    # torch keeps the unbiased variance: undo Bessel's correction to get ours back
    m = x.size // x.shape[-1]
    v0 = s["moving_variance"].astype(np.float64)
    rv_biased = momentum * v0 + (to_numpy(rv) - momentum * v0) * ((m - 1) / m)
    close(layer.moving_variance, rv_biased, dtype, "BN moving_variance vs torch")
    assert not np.allclose(layer.moving_variance, to_numpy(rv), rtol=1e-4, atol=0)
    # gamma and beta are not touched by the forward pass
    np.testing.assert_array_equal(layer.gamma, s["gamma"])
    np.testing.assert_array_equal(layer.beta, s["beta"])


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("shape", [(4, 3, 3, 2), (6, 3)], ids=["NHWC", "ND"])
def test_batchnorm_inference_matches_torch(shape, dtype):
    layer, x, dy, s = bn_setup(shape, dtype)
    y = layer(x, training=False)
    dx = layer.backward(dy)
    dgamma, dbeta, _, _ = layer.grads

    xt, gt, bt = leaf(x), leaf(s["gamma"]), leaf(s["beta"])
    rm, rv = leaf(s["moving_mean"], grad=False), leaf(s["moving_variance"], grad=False)
    yt = nhwc(F.batch_norm(nchw(xt), rm, rv, gt, bt, training=False, eps=1e-3))
    yt.backward(leaf(dy, grad=False))
    close(y, yt, dtype, "BN inference y")
    close(dx, xt.grad, dtype, "BN inference dx")
    close(dgamma, gt.grad, dtype, "BN inference dgamma")
    close(dbeta, bt.grad, dtype, "BN inference dbeta")
    # inference leaves the running statistics alone
    np.testing.assert_array_equal(layer.moving_mean, s["moving_mean"])
    np.testing.assert_array_equal(layer.moving_variance, s["moving_variance"])


def test_batchnorm_running_stats_after_several_steps_match_torch():
    """Three training calls with Keras' momentum 0.99 track torch's running_mean (momentum 0.01)."""
    rng = np.random.default_rng(5)
    layer = L.BatchNormalization(dtype="float64")
    layer.build((3,))
    rm, rv = leaf(np.zeros(3), grad=False), leaf(np.ones(3), grad=False)
    want_var = np.ones(3)
    for _ in range(3):
        x = rng.normal(size=(8, 3)) * 3 + 1
        layer(x, training=True)
        F.batch_norm(leaf(x, grad=False), rm, rv, training=True, momentum=0.01, eps=1e-3)
        want_var = 0.99 * want_var + 0.01 * x.var(axis=0)
    np.testing.assert_allclose(layer.moving_mean, to_numpy(rm), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(layer.moving_variance, want_var, rtol=1e-12)
    assert layer.moving_mean.max() > 0.02  # the statistics did move
