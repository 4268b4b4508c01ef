"""LayerNormalization and GroupNormalization: the ops against loop references, against torch's
layer_norm / group_norm (float64 oracle, slidenet float32 and float64; NHWC here, NCHW there),
float64 finite differences, Keras' weight shapes and defaults, and the error messages."""

import json

import numpy as np
import pytest
import torch.nn.functional as F

from slidenet import layers as L
from slidenet import ops
from torch_oracle import assert_matches, leaf, nhwc, to_nchw, to_numpy

# ------------------------------------------------------------------------------ loop references


def layernorm_loops(x, gamma, beta, axes, eps):
    """One mean and variance per position of the axes not normalised, by explicit loops."""
    rest = [a for a in range(x.ndim) if a not in axes]
    y = np.zeros_like(x)
    for idx in np.ndindex(*(x.shape[a] for a in rest)):
        sel = [slice(None)] * x.ndim
        for a, i in zip(rest, idx, strict=True):
            sel[a] = i
        block = x[tuple(sel)]  # the normalised axes, in order
        mean = sum(block.ravel()) / block.size
        var = sum((v - mean) ** 2 for v in block.ravel()) / block.size
        y[tuple(sel)] = (block - mean) / np.sqrt(var + eps) * gamma + beta
    return y


def groupnorm_loops(x, gamma, beta, groups, eps):
    """NHWC (or N..C): for each example n and group g, the channels g*C/G .. (g+1)*C/G - 1."""
    c = x.shape[-1]
    size = c // groups
    y = np.zeros_like(x)
    for n in range(x.shape[0]):
        for g in range(groups):
            chans = slice(g * size, (g + 1) * size)
            block = x[n, ..., chans]
            mean = block.sum() / block.size
            var = ((block - mean) ** 2).sum() / block.size
            y[n, ..., chans] = (block - mean) / np.sqrt(var + eps)
    return y * gamma + beta


@pytest.mark.parametrize(
    "shape, axis", [((3, 5), -1), ((2, 3, 4, 2), (1, 2, 3)), ((2, 3, 4, 2), (1, 3)), ((2, 3, 4), 1)]
)
def test_layernorm_matches_loops(shape, axis):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape) * 3 + 1
    axes = tuple(sorted(a % len(shape) for a in ((axis,) if isinstance(axis, int) else axis)))
    pshape = tuple(shape[a] for a in axes)
    gamma, beta = rng.standard_normal(pshape), rng.standard_normal(pshape)
    got = ops.layernorm(x, gamma, beta, axis, 1e-3)
    np.testing.assert_allclose(got, layernorm_loops(x, gamma, beta, axes, 1e-3), atol=1e-12)
    np.testing.assert_allclose(
        ops.layernorm(x, axis=axis), layernorm_loops(x, 1.0, 0.0, axes, 1e-3), atol=1e-12
    )


@pytest.mark.parametrize("shape, groups", [((2, 3, 2, 4), 2), ((2, 2, 2, 3), 3), ((3, 6), 1)])
def test_groupnorm_matches_loops(shape, groups):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape) * 2 - 1
    gamma, beta = rng.standard_normal(shape[-1]), rng.standard_normal(shape[-1])
    got = ops.groupnorm(x, gamma, beta, groups, -1, 1e-3)
    np.testing.assert_allclose(got, groupnorm_loops(x, gamma, beta, groups, 1e-3), atol=1e-12)


# ------------------------------------------------------------------------------- PyTorch oracle


def _run(layer, x, dy):
    y = layer(x)
    dx = layer.backward(dy)
    return y, dx, dict(zip(layer.weight_names, layer.grads, strict=True))


def _random_affine(layer, rng):
    layer.set_weights([rng.standard_normal(w.shape) for w in layer.weights])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    "shape, axis",
    [((4, 6), -1), ((2, 3, 4, 5), -1), ((2, 3, 4, 5), [1, 2, 3]), ((2, 3, 4, 5), [1, 3])],
    ids=["dense", "channels", "whole-example", "H-and-C"],
)
def test_layer_normalization_matches_torch(shape, axis, dtype):
    rng = np.random.default_rng(2)
    layer = L.LayerNormalization(axis=axis, dtype=dtype)
    layer.build(shape[1:])
    _random_affine(layer, rng)
    x = (rng.standard_normal(shape) * 2 + 0.5).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    y, dx, grads = _run(layer, x, dy)
    assert y.dtype == dx.dtype == grads["gamma"].dtype == np.dtype(dtype)

    xt, gt, bt = leaf(x), leaf(layer.gamma), leaf(layer.beta)
    if axis == [1, 3]:  # torch normalises trailing axes: (N, H, W, C) -> (N, W, H, C)
        yt = F.layer_norm(xt.permute(0, 2, 1, 3), gt.shape, gt, bt, eps=1e-3).permute(0, 2, 1, 3)
    else:
        yt = F.layer_norm(xt, gt.shape, gt, bt, eps=1e-3)
    (yt * leaf(dy, grad=False)).sum().backward()
    assert_matches(y, yt, "layer norm y")
    assert_matches(dx, xt.grad, "layer norm dx")
    assert_matches(grads["gamma"], gt.grad, "layer norm dgamma")
    assert_matches(grads["beta"], bt.grad, "layer norm dbeta")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    "shape, groups", [((2, 3, 4, 6), 3), ((2, 3, 4, 6), -1), ((2, 5, 4), 1), ((3, 8), 4)]
)
def test_group_normalization_matches_torch(shape, groups, dtype):
    """torch's group_norm takes NCHW (channels second) and normalises (C/G, H, W) per group."""
    rng = np.random.default_rng(3)
    layer = L.GroupNormalization(groups=groups, dtype=dtype)
    layer.build(shape[1:])
    _random_affine(layer, rng)
    x = (rng.standard_normal(shape) * 3 - 1).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    y, dx, grads = _run(layer, x, dy)
    assert y.dtype == dx.dtype == grads["beta"].dtype == np.dtype(dtype)

    xt, gt, bt = to_nchw(x), leaf(layer.gamma), leaf(layer.beta)
    g = shape[-1] if groups == -1 else groups
    yt = F.group_norm(xt, g, gt, bt, eps=1e-3)
    (yt * to_nchw(dy, grad=False)).sum().backward()
    assert_matches(y, to_numpy(yt, channels_last=True), "group norm y")
    assert_matches(dx, to_numpy(xt.grad, channels_last=True), "group norm dx")
    assert_matches(grads["gamma"], gt.grad, "group norm dgamma")
    assert_matches(grads["beta"], bt.grad, "group norm dbeta")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_group_normalization_on_axis_1_matches_torch(dtype):
    """axis=1 on (N, C, L) is torch's own layout."""
    rng = np.random.default_rng(4)
    layer = L.GroupNormalization(groups=2, axis=1, epsilon=1e-2, dtype=dtype)
    layer.build((4, 5))
    _random_affine(layer, rng)
    x = rng.standard_normal((3, 4, 5)).astype(dtype)
    dy = rng.standard_normal(x.shape).astype(dtype)
    y, dx, grads = _run(layer, x, dy)
    xt, gt, bt = leaf(x), leaf(layer.gamma), leaf(layer.beta)
    yt = F.group_norm(xt, 2, gt, bt, eps=1e-2)
    (yt * leaf(dy, grad=False)).sum().backward()
    assert_matches(y, yt, "group norm axis 1 y")
    assert_matches(dx, xt.grad, "group norm axis 1 dx")
    assert_matches(grads["gamma"], gt.grad, "group norm axis 1 dgamma")


def test_without_center_and_scale_matches_torch():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 3, 4))
    dy = rng.standard_normal(x.shape)
    ln = L.LayerNormalization(center=False, scale=False, dtype="float64")
    gn = L.GroupNormalization(groups=2, center=False, scale=False, dtype="float64")
    xt = leaf(x)
    yt = F.layer_norm(xt, (4,), eps=1e-3)
    (yt * leaf(dy, grad=False)).sum().backward()
    y, dx, grads = _run(ln, x, dy)
    assert grads == {} and ln.weights == [] and ln.count_params() == 0
    assert_matches(y, yt, "layer norm no affine y")
    assert_matches(dx, xt.grad, "layer norm no affine dx")
    xt = to_nchw(x)
    yt = nhwc(F.group_norm(xt, 2, eps=1e-3))
    (yt * leaf(dy, grad=False)).sum().backward()
    y, dx, _ = _run(gn, x, dy)
    assert_matches(y, yt, "group norm no affine y")
    assert_matches(dx, to_numpy(xt.grad, channels_last=True), "group norm no affine dx")


# ------------------------------------------------------------------------ numerical gradients


def _numerical(f, a, eps=1e-6):
    grad = np.zeros(a.shape)
    for idx in np.ndindex(a.shape):
        plus, minus = a.copy(), a.copy()
        plus[idx] += eps
        minus[idx] -= eps
        grad[idx] = (f(plus) - f(minus)) / (2 * eps)
    return grad


def _rel(num, ana):
    return np.max(np.abs(num - ana)) / max(np.max(np.abs(num)), np.max(np.abs(ana)))


@pytest.mark.parametrize(
    "op, shape, kwargs",
    [
        ("layernorm", (2, 3, 4), {"axis": -1}),
        ("layernorm", (2, 2, 3, 2), {"axis": (1, 3)}),
        ("groupnorm", (2, 2, 2, 4), {"groups": 2}),
        ("groupnorm", (2, 4, 3), {"groups": 2, "axis": 1}),
    ],
)
@pytest.mark.parametrize("affine", [True, False])
def test_gradcheck_all_entries(op, shape, kwargs, affine):
    rng = np.random.default_rng(6)
    x = rng.standard_normal(shape)
    if op == "layernorm":
        axes = [a % len(shape) for a in np.atleast_1d(kwargs["axis"])]
        pshape = tuple(shape[a] for a in sorted(axes))
    else:
        pshape = (shape[kwargs.get("axis", -1)],)
    gamma = rng.standard_normal(pshape) if affine else None
    beta = rng.standard_normal(pshape) if affine else None
    r = rng.standard_normal(shape)
    forward, backward = getattr(ops, f"{op}_forward"), getattr(ops, f"{op}_backward")

    def loss(x=x, gamma=gamma, beta=beta):
        return float(np.sum(forward(x, gamma, beta, **kwargs)[0] * r))

    dx, dgamma, dbeta = backward(r, forward(x, gamma, beta, **kwargs)[1])
    assert _rel(_numerical(lambda v: loss(x=v), x), dx) < 1e-6
    if affine:
        assert _rel(_numerical(lambda v: loss(gamma=v), gamma), dgamma) < 1e-6
        assert _rel(_numerical(lambda v: loss(beta=v), beta), dbeta) < 1e-6
    else:
        assert dgamma is None and dbeta is None


# ----------------------------------------------------------------------- Keras shapes, defaults


@pytest.mark.parametrize(
    "axis, want", [(-1, (3,)), ([1, 2, 3], (4, 5, 3)), ([1, 3], (4, 3)), (2, (5,)), ((-3,), (4,))]
)
def test_layer_normalization_weight_shapes_are_keras(axis, want):
    layer = L.LayerNormalization(axis=axis)
    layer.build((4, 5, 3))
    assert layer.weight_names == ("gamma", "beta")
    assert layer.gamma.shape == layer.beta.shape == want
    assert (layer.gamma == 1).all() and (layer.beta == 0).all()


def test_defaults_and_config_are_keras():
    ln, gn = L.LayerNormalization(), L.GroupNormalization()
    assert (ln.axis, ln.epsilon, ln.center, ln.scale) == (-1, 1e-3, True, True)
    assert (gn.groups, gn.axis, gn.epsilon, gn.center, gn.scale) == (32, -1, 1e-3, True, True)
    config = json.loads(
        json.dumps(L.GroupNormalization(4, epsilon=1e-5, center=False).get_config())
    )
    assert config["groups"] == 4 and config["epsilon"] == 1e-5 and config["center"] is False
    assert config["gamma_initializer"] == "ones" and config["beta_initializer"] == "zeros"
    clone = L.GroupNormalization.from_config(config)
    assert clone.get_config() == config and clone.weight_names == ("gamma",)
    config = L.LayerNormalization(axis=[1, 2], scale=False, gamma_initializer="zeros").get_config()
    clone = L.LayerNormalization.from_config(json.loads(json.dumps(config)))
    assert clone.get_config() == config and clone.axis == [1, 2] and clone.weight_names == ("beta",)


def test_group_norm_with_one_group_is_layer_norm_over_the_example():
    x = np.random.default_rng(7).standard_normal((3, 4, 4, 6)).astype(np.float32)
    gn = L.GroupNormalization(groups=1)(x)
    ln = L.LayerNormalization(axis=[1, 2, 3])(x)
    np.testing.assert_allclose(gn, ln, atol=1e-5)


def test_statistics_are_per_example_so_training_changes_nothing():
    x = np.random.default_rng(8).standard_normal((4, 3, 3, 4)).astype(np.float32)
    for layer in (L.LayerNormalization(), L.GroupNormalization(2)):
        np.testing.assert_array_equal(layer(x, training=True), layer(x, training=False))
        np.testing.assert_array_equal(layer(x[:1]), layer(x)[:1])  # not mixed across the batch


# ------------------------------------------------------------------------------------- errors


def test_groups_that_do_not_divide_the_channels_name_both_numbers():
    with pytest.raises(
        ValueError,
        match=r"GroupNormalization 'gn': 4 groups do not divide the 6 channels \(6 % 4 = 2\) of "
        r"input \(None, 5, 5, 6\).*1, 2, 3, 6",
    ):
        L.GroupNormalization(groups=4, name="gn").build((5, 5, 6))
    with pytest.raises(ValueError, match=r"32 groups is more than the 8 channels"):
        L.GroupNormalization().build((4, 4, 8))
    with pytest.raises(ValueError, match=r"group norm .* size 6 and groups=4 \(6 % 4 = 2\)"):
        ops.groupnorm(np.zeros((1, 6)), groups=4)


@pytest.mark.parametrize(
    "make, error, pattern",
    [
        (lambda: L.GroupNormalization(groups=0), ValueError, r"positive int \(or -1"),
        (lambda: L.GroupNormalization(groups=2.0), TypeError, "groups must be an int"),
        (lambda: L.GroupNormalization(axis=[1, 2]), TypeError, "axis must be an int"),
        (lambda: L.LayerNormalization(axis="last"), TypeError, "axis must be an int or a list"),
        (lambda: L.LayerNormalization(epsilon=0), ValueError, "epsilon must be a number > 0"),
    ],
)
def test_argument_errors(make, error, pattern):
    with pytest.raises(error, match=pattern):
        make()


@pytest.mark.parametrize(
    "layer, pattern",
    [
        (L.LayerNormalization(axis=0), r"axis 0 is not a feature axis.*axis 0 is the batch"),
        (L.LayerNormalization(axis=4), r"axis 4 is not a feature axis of input \(None, 3, 4, 2\)"),
        (L.LayerNormalization(axis=[1, -3]), "names the same axis twice"),
        (L.GroupNormalization(2, axis=-4), r"axis -4 is not a feature axis.*use 1..3 or -3..-1"),
    ],
)
def test_axis_errors_at_build(layer, pattern):
    with pytest.raises(ValueError, match=pattern):
        layer.build((3, 4, 2))
