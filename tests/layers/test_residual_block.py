"""ResidualBlock: PyTorch as the oracle (forward, dx, every parameter gradient, moving statistics),
a float64 gradient check, training through a model, and the model-file round trip.

torch is imported at the top on purpose: a missing test dependency is a failure, not a skip. The
oracle computes in float64 on contiguous NCHW tensors (tests/torch_oracle.py): torch 2.13.0's
float32 conv gives a wrong kernel gradient for channels-last input on AVX2 machines.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import slidenet as keras
from slidenet import layers as L
from slidenet.utils import gradcheck, set_random_seed
from torch_oracle import leaf, nchw, nhwc, to_numpy

TOL = {np.float64: {"rtol": 1e-9, "atol": 1e-10}, np.float32: {"rtol": 1e-4, "atol": 1e-4}}


def same_pads(n, f, s):
    """TensorFlow's 'same' rule, written out independently of slidenet: (before, after)."""
    out = math.ceil(n / s)
    total = max((out - 1) * s + f - n, 0)
    return total // 2, total - total // 2


def torch_block(x, w, stride, ksize, training, momentum, eps):
    """The block in torch, NHWC in and out (contiguous NCHW inside). ``w``: dict of float64 torch
    tensors by slidenet weight name, in slidenet's layouts.

    Returns (y, {bn name: (running_mean, running_var)}) with torch's running statistics.
    """
    stats = {}

    def conv(h, kernel, s, f):
        pt, pb = same_pads(h.shape[2], f, s)
        pl, pr = same_pads(h.shape[3], f, s)
        oihw = kernel.permute(3, 2, 0, 1).contiguous()
        return F.conv2d(F.pad(h, (pl, pr, pt, pb)), oihw, stride=s)

    def bn(h, name):
        rm = w[f"{name}/moving_mean"].detach().clone()
        rv = w[f"{name}/moving_variance"].detach().clone()
        out = F.batch_norm(
            h,
            rm,
            rv,
            w[f"{name}/gamma"],
            w[f"{name}/beta"],
            training=training,
            momentum=1 - momentum,
            eps=eps,
        )
        stats[name] = (rm, rv)
        return out

    xc = nchw(x)
    h = torch.relu(bn(conv(xc, w["conv1/kernel"], stride, ksize), "bn1"))
    h = bn(conv(h, w["conv2/kernel"], 1, ksize), "bn2")
    if "shortcut_conv/kernel" in w:
        s = bn(conv(xc, w["shortcut_conv/kernel"], stride, 1), "shortcut_bn")
    else:
        s = xc
    return nhwc(torch.relu(h + s)), stats


CASES = {
    # id: (constructor kwargs, input shape, expects a projection)
    "identity-s1": (dict(filters=3), (3, 5, 4, 3), False),
    "projection-depth": (dict(filters=4), (2, 5, 5, 2), True),
    "projection-forced": (dict(filters=3, shortcut="projection"), (2, 4, 4, 3), True),
    "projection-s2-even": (dict(filters=4, strides=2), (2, 6, 8, 2), True),  # pads (0, 1)
    "projection-s2-odd": (dict(filters=2, strides=2), (3, 7, 5, 3), True),  # pads (1, 1)
    "identity-k5": (dict(filters=2, kernel_size=5), (2, 6, 6, 2), False),
}


def random_setup(kwargs, shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    block = L.ResidualBlock(**kwargs, momentum=0.9, dtype=np.dtype(dtype).name)
    block.build(shape[1:])
    new = []
    for name, w in zip(block.weight_names, block.weights, strict=True):
        v = rng.normal(size=w.shape)
        if name.endswith("moving_variance"):
            v = np.abs(v) + 0.5
        elif name.endswith("gamma"):
            v = rng.uniform(0.5, 1.5, w.shape)
        new.append(v)
    block.set_weights(new)
    x = rng.normal(size=shape).astype(dtype)
    return block, x, rng


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("training", [True, False], ids=["train", "infer"])
@pytest.mark.parametrize("case", list(CASES))
def test_block_matches_torch(case, training, dtype):
    kwargs, shape, projects = CASES[case]
    block, x, rng = random_setup(kwargs, shape, dtype)
    assert (block.shortcut_conv is not None) is projects
    assert (block.shortcut_bn is not None) is projects
    before = {n: w.copy() for n, w in zip(block.weight_names, block.weights, strict=True)}
    wt = {n: leaf(v, grad="moving" not in n) for n, v in before.items()}
    xt = leaf(x)

    y = block(x, training=training)
    dy = rng.normal(size=y.shape).astype(dtype)
    dx = block.backward(dy)
    stride, ksize = block.strides[0], block.kernel_size[0]
    yt, stats = torch_block(xt, wt, stride, ksize, training, 0.9, block.epsilon)
    yt.backward(leaf(dy, grad=False))

    tol = TOL[dtype]
    assert y.dtype == dtype and dx.dtype == dtype
    np.testing.assert_allclose(y, to_numpy(yt), err_msg="y", **tol)
    np.testing.assert_allclose(dx, to_numpy(xt.grad), err_msg="dx", **tol)
    assert len(block.grads) == len(block.weight_names)
    for name, g in zip(block.weight_names, block.grads, strict=True):
        if "moving" in name:
            assert g is None, name
        else:
            np.testing.assert_allclose(g, to_numpy(wt[name].grad), err_msg=name, **tol)

    # moving statistics: the means as torch; torch's running variance uses the unbiased batch
    # variance, slidenet the biased one (Keras): ours = m v0 + (1 - m) var_b, var_b = var_u (n-1)/n
    for bn_name, (rm, rv) in stats.items():
        bn = getattr(block, bn_name)
        v0 = before[f"{bn_name}/moving_variance"]
        if not training:
            np.testing.assert_array_equal(bn.moving_mean, before[f"{bn_name}/moving_mean"])
            np.testing.assert_array_equal(bn.moving_variance, v0)
            continue
        n = x.shape[0] * y.shape[1] * y.shape[2]
        v0 = v0.astype(np.float64)
        want_var = 0.9 * v0 + (to_numpy(rv) - 0.9 * v0) * (n - 1) / n
        np.testing.assert_allclose(bn.moving_mean, to_numpy(rm), **tol)
        np.testing.assert_allclose(bn.moving_variance, want_var, **tol)
        assert not np.allclose(bn.moving_variance, to_numpy(rv), rtol=1e-7, atol=0)


@pytest.mark.parametrize("case", ["identity-s1", "projection-s2-even", "projection-s2-odd"])
@pytest.mark.parametrize("training", [True, False], ids=["train", "infer"])
def test_float64_gradient_check(case, training):
    kwargs, shape, _ = CASES[case]
    block, x, _ = random_setup(kwargs, shape, np.float32, seed=5)
    errors = gradcheck(block, x.astype(np.float64), training=training, max_entries=60)
    trained = {n for n in block.weight_names if "moving" not in n}
    assert set(errors) == {"dx", *trained}
    assert max(errors.values()) < 1e-6, errors
    assert block.dtype == np.float32 and all(w.dtype == np.float32 for w in block.weights)


def test_weights_are_the_sublayers_live_arrays_and_names_resolve():
    block = L.ResidualBlock(4, strides=2, name="rb")
    block.build((6, 6, 2))
    assert block.weight_names[:3] == ("conv1/kernel", "bn1/gamma", "bn1/beta")
    assert block.weight_names[-1] == "shortcut_bn/moving_variance"
    subs = [block.conv1, block.bn1, block.conv2, block.bn2, block.shortcut_conv, block.shortcut_bn]
    live = [w for layer in subs for w in layer.weights]
    assert all(a is b for a, b in zip(block.weights, live, strict=True))
    assert getattr(block, "conv2/kernel") is block.conv2.kernel
    assert block.conv1.name == "rb/conv1" and block.conv1.strides == (2, 2)
    assert block.conv1.use_bias is False and block.shortcut_conv.kernel_size == (1, 1)
    ident = L.ResidualBlock(2)
    ident.build((5, 5, 2))
    assert ident.shortcut_conv is None and ident.shortcut_bn is None and len(ident.weights) == 10


def test_training_in_a_model_updates_weights_but_not_statistics_by_gradient():
    set_random_seed(0)
    model = keras.Sequential(
        [
            L.Input((6, 6, 2)),
            L.ResidualBlock(4, strides=2),
            L.GlobalAveragePooling2D(),
            L.Dense(3, activation="softmax"),
        ]
    )
    model.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
    block = model.layers[0]
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(8, 6, 6, 2)).astype("float32"), rng.integers(0, 3, 8)
    kernel_before = block.conv1.kernel.copy()
    bn_ref = L.BatchNormalization(momentum=0.99)  # what bn1 must do to its statistics
    bn_ref.build((3, 3, 4))
    z = block.conv1(x)
    model.train_on_batch(x, y)
    bn_ref(z, training=True)
    assert not np.allclose(block.conv1.kernel, kernel_before)
    np.testing.assert_allclose(block.bn1.moving_mean, bn_ref.moving_mean, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(block.bn1.moving_variance, bn_ref.moving_variance, rtol=1e-5)
    losses = [model.train_on_batch(x, y) for _ in range(60)]  # it fits 8 examples
    assert losses[-1] < 0.5 * losses[0]


def test_model_file_round_trip(tmp_path):
    set_random_seed(1)
    model = keras.Sequential(
        [
            L.Input((8, 8, 1)),
            L.Conv2D(4, 3, padding="same", use_bias=False),
            L.ResidualBlock(4),
            L.ResidualBlock(6, strides=2),
            L.GlobalAveragePooling2D(),
            L.Dense(2, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(16, 8, 8, 1)).astype("float32"), rng.integers(0, 2, 16)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    path = tmp_path / "res.slidenet"
    model.save(path)
    loaded = keras.load_model(path)
    assert [type(layer).__name__ for layer in loaded.layers] == [
        type(layer).__name__ for layer in model.layers
    ]
    assert loaded.layers[2].get_config() == model.layers[2].get_config()
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    # the Adam state came back for the trained weights only: training continues identically
    a = model.train_on_batch(x[:8], y[:8])
    b = loaded.train_on_batch(x[:8], y[:8])
    assert a == b
    for w1, w2 in zip(model.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(w1, w2)


def test_summary_shows_the_block_and_non_trainable_statistics():
    model = keras.Sequential([L.Input((8, 8, 2)), L.ResidualBlock(4, strides=2, name="rb")])
    lines = []
    model.summary(print_fn=lines.append)
    text = lines[0]
    assert "rb (ResidualBlock)" in text and "(None, 4, 4, 4)" in text
    assert "3x3/2 conv-BN-ReLU, 3x3 conv-BN, + 1x1/2 conv-BN shortcut" in text
    # conv1 72 + bn 16 + conv2 144 + bn 16 + shortcut 8 + bn 16; moving statistics 3 * 8
    assert "Total params: 272" in text and "Non-trainable params: 24" in text
    assert "receptive field 7x7" in text  # 3 + (3 - 1) * 2


@pytest.mark.parametrize(
    "make, shape, pattern",
    [
        (
            lambda: L.ResidualBlock(4, strides=2, shortcut="identity"),
            (6, 6, 4),
            r"identity shortcut needs strides=1 and input depth == filters.*shortcut='projection'",
        ),
        (
            lambda: L.ResidualBlock(4, shortcut="identity"),
            (6, 6, 2),
            r"got input \(6, 6, 2\), filters=4",
        ),
        (lambda: L.ResidualBlock(4), (6, 2), r"expects each example shaped \(H, W, D\)"),
    ],
)
def test_build_errors_name_the_block_and_the_fix(make, shape, pattern):
    block = make()
    with pytest.raises(ValueError, match=re.escape(block.label) + ".*" + pattern):
        block.build(shape)


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        (dict(filters=0), "filters must be a positive integer"),
        (dict(filters=4, shortcut="conv"), "shortcut must be one of 'auto', 'identity'"),
        (dict(filters=4, kernel_size=(3, 3, 3)), "kernel_size must be an int or a tuple of 2"),
    ],
)
def test_bad_arguments(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        L.ResidualBlock(**kwargs)
