"""BatchNormalization against torch.nn.BatchNorm2d: training and inference modes, and the
momentum / variance conventions.

Keras (and slidenet): moving = momentum * moving + (1 - momentum) * batch statistic, momentum=0.99,
with the batch's *biased* variance (divided by n). torch: running = (1 - momentum) * running +
momentum * batch statistic, so torch's momentum=0.01 is Keras' 0.99; torch's running variance uses
the *unbiased* batch variance (divided by n - 1). Both normalise a training batch with the biased
variance.

The torch side always computes in float64 on contiguous NCHW tensors (tests/torch_oracle.py);
slidenet's float32 results are compared with that float64 reference at float32 tolerances.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from slidenet import layers as L
from torch_oracle import leaf, nhwc, to_nchw, to_numpy

TOL = {np.float64: {"rtol": 1e-10, "atol": 1e-12}, np.float32: {"rtol": 1e-5, "atol": 2e-5}}


def pair(d, dtype, momentum=0.99, eps=1e-3):
    """A slidenet layer in ``dtype`` and a float64 torch module with the same conventions and
    random gamma/beta."""
    rng = np.random.default_rng(7)
    ours = L.BatchNormalization(momentum=momentum, epsilon=eps, dtype=np.dtype(dtype).name)
    ours.build((4, 5, d))
    gamma, beta = rng.uniform(0.5, 1.5, d), rng.normal(size=d)
    ours.set_weights([gamma, beta, np.zeros(d), np.ones(d)])
    theirs = torch.nn.BatchNorm2d(d, momentum=1 - momentum, eps=eps).double()
    with torch.no_grad():
        theirs.weight.copy_(leaf(gamma, grad=False))
        theirs.bias.copy_(leaf(beta, grad=False))
    return ours, theirs


def run_torch(module, x, dy):
    """NHWC x and dy through an NCHW module (float64, contiguous NCHW): (y, dx, dgamma, dbeta) as
    float64 NHWC NumPy arrays."""
    module.weight.grad = module.bias.grad = None
    xt = to_nchw(x)
    yt = module(xt)
    yt.backward(to_nchw(dy, grad=False))
    return (
        to_numpy(nhwc(yt)),
        to_numpy(nhwc(xt.grad)),
        to_numpy(module.weight.grad),
        to_numpy(module.bias.grad),
    )


def check(ours_out, theirs_out, dtype):
    for what, a, b in zip(("y", "dx", "dgamma", "dbeta"), ours_out, theirs_out, strict=True):
        assert a.dtype == dtype, what
        np.testing.assert_allclose(a, b, err_msg=what, **TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_training_mode_and_running_statistics_over_several_steps(dtype):
    d = 3
    ours, theirs = pair(d, dtype)
    theirs.train()
    rng = np.random.default_rng(0)
    want_var = torch_var = np.ones(d)
    for _ in range(4):
        x = (rng.normal(size=(5, 4, 5, d)) * 3 + 2).astype(dtype)
        dy = rng.normal(size=x.shape).astype(dtype)
        y = ours(x, training=True)
        dx = ours.backward(dy)
        dgamma, dbeta, none1, none2 = ours.grads
        assert none1 is None and none2 is None  # the statistics are not trained
        check((y, dx, dgamma, dbeta), run_torch(theirs, x, dy), dtype)
        n = x.size // d
        biased = x.astype(np.float64).var(axis=(0, 1, 2))
        want_var = 0.99 * want_var + 0.01 * biased  # Keras' recurrence, biased variance
        torch_var = 0.99 * torch_var + 0.01 * biased * n / (n - 1)  # torch's, unbiased
        np.testing.assert_allclose(ours.moving_mean, to_numpy(theirs.running_mean), **TOL[dtype])
        np.testing.assert_allclose(ours.moving_variance, want_var, **TOL[dtype])
        np.testing.assert_allclose(to_numpy(theirs.running_var), torch_var, **TOL[dtype])
    # after 4 steps the two running variances differ by sum_k 0.01 * 0.99^(4-k) * (u_k - b_k) > 0
    gap = to_numpy(theirs.running_var) - ours.moving_variance
    assert (gap > 0).all() and gap.max() < 0.05
    assert ours.moving_mean.max() > 0.05  # the statistics did move


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_inference_mode_uses_the_running_statistics(dtype):
    d = 4
    ours, theirs = pair(d, dtype, momentum=0.9, eps=1e-2)
    rng = np.random.default_rng(1)
    mean, var = rng.normal(size=d), rng.uniform(0.5, 3.0, d)
    ours.set_weights([ours.gamma, ours.beta, mean, var])
    with torch.no_grad():
        theirs.running_mean.copy_(leaf(mean, grad=False))
        theirs.running_var.copy_(leaf(var, grad=False))
    theirs.eval()
    x = (rng.normal(size=(3, 4, 5, d)) * 2 - 1).astype(dtype)
    dy = rng.normal(size=x.shape).astype(dtype)
    y = ours(x, training=False)
    dx = ours.backward(dy)
    check((y, dx, *ours.grads[:2]), run_torch(theirs, x, dy), dtype)
    np.testing.assert_array_equal(ours.moving_mean, mean.astype(dtype))  # untouched
    np.testing.assert_array_equal(ours.moving_variance, var.astype(dtype))
    # a single example works at inference (no batch statistics needed)
    np.testing.assert_allclose(ours(x[:1]), y[:1], **TOL[dtype])


def test_one_training_step_variance_relation_exactly():
    """One step from moving_variance = v0: torch's minus ours is (1 - m) (unbiased - biased)."""
    ours, theirs = pair(2, np.float64)
    theirs.train()
    x = np.random.default_rng(3).normal(size=(2, 4, 5, 2)) * 4
    ours(x, training=True)
    run_torch(theirs, x, np.ones_like(x))
    n = x.size // 2
    biased = x.var(axis=(0, 1, 2))
    np.testing.assert_allclose(
        to_numpy(theirs.running_var) - ours.moving_variance, 0.01 * biased / (n - 1), rtol=1e-10
    )
    np.testing.assert_allclose(ours.moving_variance, 0.99 + 0.01 * biased, rtol=1e-12)
