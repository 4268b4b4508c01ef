"""Fuzz every class in slidenet.layers.LAYER_CLASSES: construction, building, forward, backward.

Random constructor arguments (some invalid), random input shapes (zero-size batches and zero
dimensions included, wrong ranks), dtypes, NaN / Inf, strided and read-only arrays. A layer either
works (output shaped as ``output_shape`` says, finite for moderate finite inputs, dx like x and
grads like the weights) or raises a documented error naming the layer.
"""

from __future__ import annotations

import numpy as np
from fuzz_support import (
    FUZZ,
    assert_finite,
    call_clean,
    float_arrays,
    is_nasty,
    odd_arrays,
    small_shapes,
)
from hypothesis import given
from hypothesis import strategies as st

from slidenet import layers as L

sizes = st.integers(-1, 4)
ACTS = st.sampled_from([None, "relu", "sigmoid", "tanh", "softmax", "linear"])
PADDING_2D = st.one_of(
    st.sampled_from(["valid", "same", "SAME", "full"]),
    st.integers(-1, 2),
    st.tuples(st.integers(0, 2), st.integers(0, 2)),
    st.tuples(
        st.tuples(st.integers(0, 2), st.integers(0, 2)),
        st.tuples(st.integers(0, 2), st.integers(0, 2)),
    ),
)
PADDING_1D = st.one_of(
    st.sampled_from(["valid", "same", "causal"]),
    st.integers(-1, 2),
    st.tuples(st.integers(0, 2), st.integers(0, 2)),
)


def layer_args(name):
    """Keyword arguments for the constructor of layer class ``name`` (sometimes invalid)."""
    if name == "InputLayer":
        return st.fixed_dictionaries({"shape": small_shapes(1, 3, 0, 3)})
    if name == "Conv2D":
        return st.fixed_dictionaries(
            {
                "filters": sizes,
                "kernel_size": st.one_of(sizes, st.tuples(sizes, sizes)),
                "strides": st.one_of(st.integers(0, 3), st.tuples(sizes, sizes)),
                "padding": PADDING_2D,
                "dilation_rate": st.integers(0, 2),
                "activation": ACTS,
                "use_bias": st.booleans(),
            }
        )
    if name == "Conv1D":
        return st.fixed_dictionaries(
            {
                "filters": sizes,
                "kernel_size": sizes,
                "strides": st.integers(0, 3),
                "padding": PADDING_1D,
                "dilation_rate": st.integers(0, 2),
                "activation": ACTS,
            }
        )
    if name == "Dense":
        return st.fixed_dictionaries(
            {"units": sizes, "activation": ACTS, "use_bias": st.booleans()}
        )
    if name == "Reshape":
        return st.fixed_dictionaries({"target_shape": small_shapes(1, 3, -1, 4)})
    if name == "Dropout" or name.startswith("SpatialDropout"):
        return st.fixed_dictionaries(
            {"rate": st.sampled_from([0.0, 0.5, 0.9, 1.0, -0.1]), "seed": st.integers(0, 3)}
        )
    if name == "Activation":
        return st.fixed_dictionaries(
            {
                "activation": st.sampled_from(
                    ["relu", "sigmoid", "tanh", "softmax", "linear", "gelu"]
                )
            }
        )
    if name == "BatchNormalization":
        return st.fixed_dictionaries(
            {
                "momentum": st.sampled_from([0.0, 0.5, 0.99, 1.0, 1.5]),
                "epsilon": st.sampled_from([1e-3, 1e-7, 0.0, -1.0]),
            }
        )
    if name.endswith("Pooling2D") and not name.startswith("Global"):
        return st.fixed_dictionaries(
            {
                "pool_size": st.one_of(sizes, st.tuples(sizes, sizes)),
                "strides": st.one_of(st.none(), sizes),
                "padding": st.sampled_from(["valid", "same", "full"]),
            }
        )
    if name.endswith("Pooling1D") and not name.startswith("Global"):
        return st.fixed_dictionaries(
            {
                "pool_size": sizes,
                "strides": st.one_of(st.none(), sizes),
                "padding": st.sampled_from(["valid", "same"]),
            }
        )
    if name == "ResidualBlock":
        return st.fixed_dictionaries(
            {
                "filters": sizes,
                "kernel_size": st.integers(0, 3),
                "strides": st.integers(0, 2),
                "shortcut": st.sampled_from(["auto", "identity", "projection", "none"]),
            }
        )
    return st.just({})


def make_layer(name, kwargs):
    """The layer, or None when the constructor refused the arguments with a clear error."""
    ok, layer = call_clean(L.LAYER_CLASSES[name], [name, "must", "padding", "shape"], **kwargs)
    return layer if ok else None


@st.composite
def layer_and_input(draw):
    name = draw(st.sampled_from(sorted(L.LAYER_CLASSES)))
    layer = make_layer(name, draw(layer_args(name)))
    shape = (draw(st.integers(0, 3)), *draw(small_shapes(0, 4, 0, 5)))
    return name, layer, shape


def _check_forward_backward(name, layer, x, training):
    ok, y = call_clean(layer, [name, layer.name], x, training=training)
    if not ok:
        return
    assert layer.built
    assert y.shape == (x.shape[0], *layer.output_shape[1:]), (name, x.shape, y.shape)
    assert y.dtype == layer.dtype
    if not is_nasty(x):
        assert_finite(y, f"{name} forward")
    dy = np.random.default_rng(0).uniform(-1, 1, y.shape).astype(y.dtype)
    kwargs = {"need_dx": True} if name in ("Conv2D", "Conv1D") else {}
    ok, dx = call_clean(layer.backward, [name, layer.name], dy, **kwargs)
    if not ok:
        return
    assert dx.shape == x.shape, (name, x.shape, dx.shape)
    assert len(layer.grads) == len(layer.weights)
    for g, w in zip(layer.grads, layer.weights, strict=True):
        assert g is None or g.shape == w.shape
    if not is_nasty(x):
        assert_finite([dx, *layer.grads], f"{name} backward")


@FUZZ
@given(layer_and_input(), st.data(), st.booleans())
def test_layers_forward_backward_on_random_shapes(case, data, training):
    name, layer, shape = case
    if layer is None:
        return
    x = data.draw(float_arrays(shape, bound=10.0))
    _check_forward_backward(name, layer, x, training)


@FUZZ
@given(layer_and_input(), st.data())
def test_layers_refuse_odd_inputs_clearly(case, data):
    name, layer, shape = case
    if layer is None:
        return
    x = data.draw(odd_arrays(shape))
    with np.errstate(all="ignore"):  # NaN in, NaN out is allowed; a crash is not
        ok, y = call_clean(layer, [name, layer.name], x)
    if ok and x.dtype.kind in "biu":
        assert y.dtype == layer.dtype


@FUZZ
@given(layer_and_input(), small_shapes(1, 5, 0, 4))
def test_layers_called_again_with_another_shape(case, other):
    name, layer, shape = case
    if layer is None:
        return
    x = np.ones(shape, np.float32)
    ok, _ = call_clean(layer, [name, layer.name], x)
    if not ok:
        return
    ok, y = call_clean(layer, [name, layer.name], np.ones(other, np.float32))
    if ok:  # only the batch size may change
        assert other[1:] == shape[1:] and y.shape[0] == other[0]


@FUZZ
@given(layer_and_input(), st.data())
def test_layers_backward_with_wrong_gradient_shape(case, data):
    name, layer, shape = case
    if layer is None:
        return
    ok, y = call_clean(layer, [name, layer.name], np.ones(shape, np.float32), training=True)
    if not ok:
        return
    wrong = data.draw(small_shapes(1, 5, 0, 4).filter(lambda s: s != y.shape))
    kwargs = {"need_dx": True} if name in ("Conv2D", "Conv1D") else {}
    call_clean(layer.backward, [name, layer.name, "dy"], np.ones(wrong, np.float32), **kwargs)
