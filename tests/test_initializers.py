"""Initializers: shapes and dtypes, variance-scaling statistics, fans of conv kernels, seeding."""

from __future__ import annotations

import numpy as np
import pytest

from slidenet import initializers, layers
from slidenet.utils import set_random_seed

TRUNC = 0.87962566103423978  # std of a standard normal truncated to [-2, 2]
NAMES = ["zeros", "ones", "he_normal", "he_uniform", "glorot_normal", "glorot_uniform"]
BIG = (3, 3, 64, 96)  # 55,296 values: sample std within ~0.5 % of the true one
FAN_IN, FAN_OUT = 3 * 3 * 64, 3 * 3 * 96


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", [(7,), (4, 5), (3, 3, 2, 4), (5, 2, 3)])
@pytest.mark.parametrize("name", NAMES)
def test_shape_and_dtype(name, shape, dtype):
    values = initializers.get(name)(shape, dtype)
    assert values.shape == shape
    assert values.dtype == np.dtype(dtype)
    assert np.isfinite(values).all()


def test_zeros_and_ones():
    assert not initializers.get("zeros")((3, 2)).any()
    assert (initializers.get("ones")((3, 2)) == 1).all()


@pytest.mark.parametrize(
    "shape, fans",
    [
        ((5, 5, 3, 32), (75, 800)),  # conv kernel (Fh, Fw, D, K)
        ((3, 4, 8), (12, 24)),  # conv1d kernel (F, D, K)
        ((784, 10), (784, 10)),  # dense kernel (D_in, units)
        ((1, 1, 16, 4), (16, 4)),
        ((10,), (10, 10)),
    ],
)
def test_compute_fans(shape, fans):
    assert initializers.compute_fans(shape) == fans


def fraction_within(values, bound):
    return float(np.mean(np.abs(values) < bound))


@pytest.mark.parametrize(
    "name, std",
    [
        ("he_normal", np.sqrt(2 / FAN_IN)),
        ("glorot_normal", np.sqrt(2 / (FAN_IN + FAN_OUT))),
    ],
)
def test_truncated_normals(name, std):
    set_random_seed(0)
    values = initializers.get(name)(BIG, "float64")
    # the truncated distribution keeps the intended variance
    assert values.std() == pytest.approx(std, rel=0.03)
    assert abs(values.mean()) < 0.02 * std
    # truncated at two standard deviations of the underlying normal, std / 0.8796
    bound = 2 * std / TRUNC
    assert np.abs(values).max() <= bound
    assert np.abs(values).max() > 0.99 * bound
    # normal, not uniform: P(|z| < 1) / P(|z| < 2) = 0.6827 / 0.9545 = 0.715 (uniform: 0.5)
    assert fraction_within(values, std / TRUNC) == pytest.approx(0.6827 / 0.9545, abs=0.01)


@pytest.mark.parametrize(
    "name, limit",
    [
        ("he_uniform", np.sqrt(6 / FAN_IN)),
        ("glorot_uniform", np.sqrt(6 / (FAN_IN + FAN_OUT))),
    ],
)
def test_uniforms(name, limit):
    set_random_seed(1)
    values = initializers.get(name)(BIG, "float64")
    assert np.abs(values).max() <= limit
    assert values.min() < -0.999 * limit and values.max() > 0.999 * limit
    assert values.var() == pytest.approx(limit**2 / 3, rel=0.03)  # = 2/fan_in or 2/(in + out)
    # uniform: half the values within half the limit
    assert fraction_within(values, limit / 2) == pytest.approx(0.5, abs=0.01)


def test_glorot_uniform_dense_limit():
    set_random_seed(2)
    values = initializers.get("glorot_uniform")((300, 100), "float64")
    limit = np.sqrt(6 / 400)
    assert np.abs(values).max() <= limit and np.abs(values).max() > 0.99 * limit
    assert values.var() == pytest.approx(2 / 400, rel=0.03)


def test_layers_use_the_fans_of_their_kernels():
    set_random_seed(3)
    conv = layers.Conv2D(64, 3, kernel_initializer="he_uniform")
    conv.build((8, 8, 32))
    limit = np.sqrt(6 / (3 * 3 * 32))
    assert conv.kernel.shape == (3, 3, 32, 64)
    assert np.abs(conv.kernel).max() <= limit and np.abs(conv.kernel).max() > 0.99 * limit
    assert (conv.bias == 0).all()
    dense = layers.Dense(50, bias_initializer="ones")
    dense.build((200,))
    limit = np.sqrt(6 / 250)  # glorot_uniform by default
    assert np.abs(dense.kernel).max() <= limit and np.abs(dense.kernel).max() > 0.99 * limit
    assert (dense.bias == 1).all()
    conv1d = layers.Conv1D(40, 5, kernel_initializer="he_normal")
    conv1d.build((30, 20))
    assert conv1d.kernel.std() == pytest.approx(np.sqrt(2 / 100), rel=0.05)


@pytest.mark.parametrize("name", NAMES[2:])
def test_reproducible_with_set_random_seed(name):
    init = initializers.get(name)
    set_random_seed(123)
    a = init((4, 5))
    b = init((4, 5))
    set_random_seed(123)
    np.testing.assert_array_equal(init((4, 5)), a)
    np.testing.assert_array_equal(init((4, 5)), b)
    assert not np.array_equal(a, b)  # successive draws differ
    set_random_seed(124)
    assert not np.array_equal(init((4, 5)), a)


def test_layers_are_reproducible_with_set_random_seed():
    def build():
        conv, dense = layers.Conv2D(4, 3), layers.Dense(3, kernel_initializer="he_normal")
        conv.build((6, 6, 2))
        dense.build((5,))
        return conv.get_weights() + dense.get_weights()

    set_random_seed(7)
    first = build()
    set_random_seed(7)
    second = build()
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)


def test_initializer_with_its_own_seed():
    a = initializers.HeNormal(seed=5)((3, 4))
    set_random_seed(0)
    b = initializers.HeNormal(seed=5)((3, 4))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, initializers.HeNormal(seed=6)((3, 4)))


def test_get_accepts_instances_classes_and_callables():
    init = initializers.GlorotUniform()
    assert initializers.get(init) is init
    assert type(initializers.get(initializers.HeNormal)) is initializers.HeNormal

    def const(shape, dtype="float32"):
        return np.full(shape, 0.5, dtype)

    assert initializers.get(const) is const
    dense = layers.Dense(2, kernel_initializer=const)
    dense.build((3,))
    assert (dense.kernel == 0.5).all()


def test_serialize_round_trip():
    for name in NAMES:
        assert initializers.serialize(initializers.get(name)) == name
    seeded = initializers.serialize(initializers.HeUniform(seed=9))
    assert seeded == {"class_name": "he_uniform", "config": {"seed": 9}}
    np.testing.assert_array_equal(
        initializers.deserialize(seeded)((2, 3)), initializers.HeUniform(seed=9)((2, 3))
    )


@pytest.mark.parametrize(
    "bad, suggestion",
    [("he_normall", "he_normal"), ("glorot_unifrom", "glorot_uniform"), ("zero", "zeros")],
)
def test_unknown_name_suggests_the_closest(bad, suggestion):
    pattern = rf"Unknown initializer '{bad}'\. Did you mean '{suggestion}'\?"
    with pytest.raises(ValueError, match=pattern):
        initializers.get(bad)
    with pytest.raises(ValueError, match=pattern):
        layers.Dense(3, kernel_initializer=bad)


def test_wrong_type():
    with pytest.raises(TypeError, match="initializer must be a name or an Initializer"):
        initializers.get(0.5)
