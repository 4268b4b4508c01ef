"""Regularizers and constraints: penalties in the loss and its gradient (torch float64 oracle),
constraints after each step, configs and model files, and errors."""

import numpy as np
import pytest
import torch

import slidenet as keras
from slidenet import constraints, regularizers
from torch_oracle import leaf, to_numpy

L = keras.layers


@pytest.mark.parametrize(
    "reg,torch_penalty",
    [
        (regularizers.L2(0.05), lambda w: 0.05 * (w**2).sum()),
        (regularizers.L1(0.02), lambda w: 0.02 * w.abs().sum()),
        (regularizers.L1L2(0.01, 0.03), lambda w: 0.01 * w.abs().sum() + 0.03 * (w**2).sum()),
    ],
)
def test_one_step_with_a_regularized_conv_matches_torch(reg, torch_penalty):
    keras.utils.set_random_seed(0)
    conv = L.Conv2D(2, 3, kernel_regularizer=reg, bias_regularizer=reg, dtype="float64")
    model = keras.Sequential([L.Input((5, 5, 1)), conv, L.Flatten(dtype="float64")])
    model.compile(keras.optimizers.SGD(0.1), "mse")
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(3, 5, 5, 1)), rng.normal(size=(3, 18))
    w0, b0 = conv.get_weights()
    loss = model.train_on_batch(x, y)
    wt, bt = leaf(w0), leaf(b0)
    cols = np.lib.stride_tricks.sliding_window_view(x, (3, 3), axis=(1, 2))  # (3,3,3,1,3,3)
    pred = torch.einsum("nijdhw,hwdk->nijk", leaf(cols, grad=False), wt) + bt
    mse = ((pred.reshape(3, -1) - leaf(y, grad=False)) ** 2).mean()
    total = mse + torch_penalty(wt) + torch_penalty(bt)
    total.backward()
    assert loss == pytest.approx(total.item(), rel=1e-12)
    np.testing.assert_allclose(conv.kernel, w0 - 0.1 * to_numpy(wt.grad), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(conv.bias, b0 - 0.1 * to_numpy(bt.grad), rtol=1e-12, atol=1e-14)
    assert model.regularization_loss() == pytest.approx(
        reg(conv.kernel) + reg(conv.bias), rel=1e-12
    )


class _Block(L.Layer):
    """A composite layer whose Dense carries the regularizer."""

    def __init__(self, reg, **kwargs):
        super().__init__(**kwargs)
        self.dense = L.Dense(3, kernel_regularizer=reg, dtype="float64")

    def call(self, x):
        return self.dense(x)


def _nested(reg):
    inner_in = keras.Input((4,), dtype="float64")
    inner = keras.Model(inner_in, L.Dense(3, kernel_regularizer=reg, dtype="float64")(inner_in))
    x = keras.Input((4,), dtype="float64")
    return keras.Model(x, L.Dense(2, dtype="float64")(_Block(reg)(inner(x))))


def test_regularizers_inside_nested_graphs_and_composite_layers_reach_the_step():
    # the same step with and without l2: the kernels differ by exactly lr * 2 * l2 * w
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(5, 4)), rng.normal(size=(5, 2))
    runs = []
    for reg in (None, regularizers.l2(0.05)):
        keras.utils.set_random_seed(0)
        model = _nested(reg)
        model.compile(keras.optimizers.SGD(0.1), "mse")
        before = model.get_weights()
        if reg is not None:
            kernels = [w for w in before if w.shape in ((4, 3), (3, 3))]
            penalty = sum(0.05 * float((k**2).sum()) for k in kernels)
            assert model.regularization_loss() == pytest.approx(penalty, rel=1e-12)
        model.train_on_batch(x, y)
        runs.append((before, model.get_weights()))
    (b0, plain), (b1, regular) = runs
    for w0, w1, a, b in zip(b0, b1, plain, regular, strict=True):
        np.testing.assert_array_equal(w0, w1)
        extra = 0.1 * 2 * 0.05 * w0 if w0.shape in ((4, 3), (3, 3)) else 0.0
        np.testing.assert_allclose(b, a - extra, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(
    "constraint,check",
    [
        (constraints.MaxNorm(0.3), lambda w: np.sqrt((w**2).sum(0)) <= 0.3 + 1e-6),
        (constraints.NonNeg(), lambda w: w >= 0),
        (constraints.UnitNorm(), lambda w: np.isclose(np.sqrt((w**2).sum(0)), 1, atol=1e-5)),
        (
            constraints.MinMaxNorm(0.2, 0.4),
            lambda w: (
                (np.sqrt((w**2).sum(0)) >= 0.2 - 1e-6) & (np.sqrt((w**2).sum(0)) <= 0.4 + 1e-6)
            ),
        ),
    ],
)
def test_constraints_hold_after_every_step(constraint, check):
    keras.utils.set_random_seed(0)
    dense = L.Dense(3, kernel_constraint=constraint)
    model = keras.Sequential([L.Input((4,)), dense])
    model.compile(keras.optimizers.SGD(0.5), "mse")
    rng = np.random.default_rng(0)
    model.fit(rng.normal(size=(16, 4)), rng.normal(size=(16, 3)), epochs=2, batch_size=4, verbose=0)
    assert np.all(check(dense.kernel))


def test_configs_survive_model_files(tmp_path):
    dense = L.Dense(
        2,
        kernel_regularizer=regularizers.l1_l2(0.1, 0.2),
        bias_constraint="non_neg",
        kernel_constraint=constraints.MaxNorm(2, axis=[0]),
    )
    model = keras.Sequential([L.Input((3,)), dense])
    model.compile("adam", "mse")
    model.save(tmp_path / "m.slidenet")
    again = keras.load_model(tmp_path / "m.slidenet").layers[0]
    assert again.get_config() == dense.get_config()
    assert again.regularizers["kernel"].l2 == 0.2


def test_errors_name_the_layer_and_the_fix():
    with pytest.raises(
        ValueError, match="Unknown regularizer 'l3'. Valid regularizers: 'l1', 'l1_l2', 'l2'"
    ):
        L.Dense(2, kernel_regularizer="l3")
    with pytest.raises(ValueError, match="l2 must be a number >= 0"):
        regularizers.L2(-1)
    with pytest.raises(ValueError, match="activity_regularizer is not supported"):
        L.Dense(2, activity_regularizer="l2")
    layer = L.Dense(2, use_bias=False, bias_regularizer="l2")
    layer.build((3,))
    with pytest.raises(
        ValueError, match="Dense 'dense.*has no weight 'bias'; its weights are kernel"
    ):
        layer.regularized_weights()
    with pytest.raises(ValueError, match="MaxNorm: max_value must be > 0"):
        constraints.MaxNorm(0)


def test_evaluate_reports_the_same_regularized_loss_as_keras():
    keras.utils.set_random_seed(0)
    dense = L.Dense(2, kernel_regularizer=regularizers.l2(0.5))
    model = keras.Sequential([L.Input((3,)), dense])
    model.compile("sgd", "mse")
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(5, 3)).astype("float32"), rng.normal(size=(5, 2)).astype("float32")
    mse = float(np.mean((model.predict(x) - y) ** 2))
    penalty = 0.5 * float(np.sum(dense.kernel.astype(np.float64) ** 2))
    assert model.evaluate(x, y, verbose=0) == pytest.approx(mse + penalty, rel=1e-5)
    assert model.test_on_batch(x, y) == pytest.approx(mse + penalty, rel=1e-5)
