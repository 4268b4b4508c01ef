"""Bad graphs and bad data for graph models: one clear error each, matched by regex.

Building: an unused input, a disconnected output, a tensor of another graph, a symbolic tensor
mixed with an array, a kernel that does not fit the symbolic shape (at the call, naming the layer
and the shapes), merges of mismatched shapes (naming both), a shared layer on a new shape,
arithmetic on symbolic tensors (``a + b`` builds an Add; ``a + 1`` names layers.Add). Data: dict
keys missing or unknown, list counts wrong, examples counts that differ, losses per output.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

import slidenet as keras
from slidenet import layers as L


def two_inputs():
    return keras.Input((4,), name="a"), keras.Input((4,), name="b")


# ----- building the graph -------------------------------------------------------------------------
def test_unused_input():
    a, b = two_inputs()
    with pytest.raises(ValueError, match=r"input 'b' \(None, 4\) is not used by any output"):
        keras.Model([a, b], L.Dense(2)(a))


def test_output_from_an_input_not_given():
    a, b = two_inputs()
    with pytest.raises(
        ValueError,
        match=r"graph disconnected: the outputs need .*InputLayer 'b'.*not among the model's "
        r"inputs \(reached via add\w*\)",
    ):
        keras.Model(a, L.Add()([a, b]))


def test_tensor_of_another_graph():
    i1 = keras.Input((4,), name="first")
    h = L.Dense(3, name="other_dense")(i1)
    keras.Model(i1, h)  # a model of its own
    i2 = keras.Input((4,), name="second")
    with pytest.raises(
        ValueError, match=r"graph disconnected: .*'first'.*reached via \w+ <- other_dense"
    ):
        keras.Model(i2, L.Dense(2)(h))


def test_an_input_must_be_an_input():
    a = keras.Input((4,))
    h = L.Dense(3)(a)
    with pytest.raises(ValueError, match=r"every input must come straight from keras.Input"):
        keras.Model(h, L.Dense(2)(h))
    with pytest.raises(TypeError, match=r"outputs must be symbolic tensors .* got ndarray"):
        keras.Model(a, np.zeros((1, 4)))


@pytest.mark.parametrize("make_list", [lambda a: [a, np.zeros((2, 4))], lambda a: [1.0, a]])
def test_symbolic_tensor_mixed_with_an_array(make_list):
    a = keras.Input((4,))
    with pytest.raises(
        TypeError, match=r"Add 'add\w*': mixes symbolic tensors and (ndarray|float) values"
    ):
        L.Add()(make_list(a))


def test_symbolic_tensor_has_no_values():
    a = keras.Input((4,))
    with pytest.raises(TypeError, match=r"is symbolic: it has a shape but no values"):
        np.asarray(a)


def test_kernel_that_does_not_fit_fails_at_the_call():
    x = keras.Input((3, 3, 1))
    conv = L.Conv2D(2, 5, name="too_big")
    with pytest.raises(
        ValueError,
        match=r"Conv2D 'too_big': kernel 5x5 does not fit input 3x3 with padding='valid'",
    ):
        conv(x)
    with pytest.raises(ValueError, match=r"MaxPooling2D 'pool\w*'.*3"):
        L.MaxPooling2D(4, name="pool")(x)


def test_layer_of_the_wrong_rank_names_layer_and_shape():
    v = keras.Input((5,))
    with pytest.raises(ValueError, match=r"Conv2D 'conv2d\w*' expects each example shaped.*\(5,\)"):
        L.Conv2D(2, 3)(v)


def test_shared_layer_called_on_another_shape():
    dense = L.Dense(2, name="shared")
    dense(keras.Input((4,)))
    with pytest.raises(
        ValueError,
        match=r"Dense 'shared' was built for input \(None, 4\) but is called on a tensor of "
        r"shape \(None, 5\)",
    ):
        dense(keras.Input((5,)))


@pytest.mark.parametrize(
    ("layer", "shapes", "message"),
    [
        (
            L.Add(name="m"),
            [(4,), (5,)],
            r"Add 'm': inputs must have the same shape, got \(4,\) and \(5,\)",
        ),
        (L.Multiply(name="m"), [(2, 2, 3), (2, 2, 4)], r"\(2, 2, 3\) and \(2, 2, 4\)"),
        (
            L.Concatenate(name="m"),
            [(3, 3, 1), (4, 3, 1)],
            r"Concatenate 'm': all inputs must match except on axis -1, got \(3, 3, 1\) and "
            r"\(4, 3, 1\)",
        ),
        (L.Subtract(name="m"), [(4,), (4,), (4,)], r"Subtract 'm' needs exactly 2 inputs, got 3"),
        (L.Add(name="m"), [(4,)], r"Add 'm' needs a list of at least 2 inputs, got 1"),
    ],
)
def test_merge_of_mismatched_shapes_names_both(layer, shapes, message):
    with pytest.raises(ValueError, match=message):
        layer([keras.Input(s) for s in shapes])


def test_arithmetic_on_symbolic_tensors_builds_merge_layers():
    a, b = two_inputs()
    for y, cls in [(a + b, L.Add), (a - b, L.Subtract), (a * b, L.Multiply)]:
        assert isinstance(y.node.layer, cls)
        assert y.node.inputs == [a, b] and y.shape == (None, 4)
    model = keras.Model([a, b], (a + b) * (a - b))
    xa, xb = np.arange(8.0).reshape(2, 4), np.ones((2, 4))
    np.testing.assert_allclose(model([xa, xb]), xa**2 - xb**2)


@pytest.mark.parametrize(
    ("expr", "layer"),
    [
        (lambda a: a + 1, "Add"),
        (lambda a: 1 + a, "Add"),
        (lambda a: a - 1.5, "Subtract"),
        (lambda a: 2 - a, "Subtract"),
        (lambda a: a * 2, "Multiply"),
        (lambda a: np.ones(4) + a, "Add"),
    ],
)
def test_arithmetic_with_a_constant_names_the_layer(expr, layer):
    a = keras.Input((4,))
    with pytest.raises(
        TypeError, match=rf"needs another symbolic tensor, got \w+; use layers\.{layer}"
    ):
        expr(a)


def test_a_graph_deeper_than_the_recursion_limit():
    x = keras.Input((2,))
    h = x
    for _ in range(sys.getrecursionlimit() + 100):
        h = L.ReLU()(h)
    model = keras.Model(x, h)
    assert len(model.layers) == sys.getrecursionlimit() + 101
    np.testing.assert_array_equal(model.predict(np.array([[1.0, -1.0]])), [[1.0, 0.0]])


def test_two_layers_with_one_name():
    a = keras.Input((4,))
    with pytest.raises(ValueError, match=r"two different layers are named 'twin'"):
        keras.Model(a, L.Dense(2, name="twin")(L.Dense(3, name="twin")(a)))


def test_nested_model_called_on_the_wrong_shape():
    i = keras.Input((4,))
    inner = keras.Model(i, L.Dense(2)(i), name="inner")
    with pytest.raises(
        ValueError,
        match=r"Model 'inner' expects inputs shaped \(None, 4\) but is called on "
        r"tensors shaped \(None, 3\)",
    ):
        inner(keras.Input((3,)))


# ----- bad data for several inputs and outputs ----------------------------------------------------
@pytest.fixture
def model():
    a, b = two_inputs()
    out_a = L.Dense(3, activation="softmax", name="out_a")(a)
    out_b = L.Dense(1, name="out_b")(L.Concatenate()([a, b]))
    m = keras.Model({"a": a, "b": b}, {"out_a": out_a, "out_b": out_b})
    m.compile("sgd", loss={"out_a": "sparse_categorical_crossentropy", "out_b": "mse"})
    return m


X = {"a": np.zeros((4, 4)), "b": np.zeros((4, 4))}
Y = {"out_a": np.zeros(4, int), "out_b": np.zeros((4, 1))}


@pytest.mark.parametrize(
    ("x", "y", "message"),
    [
        (
            {"a": X["a"]},
            Y,
            r"fit: x is a dict with keys \['a'\] but model '\w+' takes inputs "
            r"\['a', 'b'\]; missing \['b'\]",
        ),
        ({**X, "c": X["a"]}, Y, r"x is a dict .* unknown \['c'\]"),
        (
            X,
            {"out_a": Y["out_a"]},
            r"fit: y is a dict without key\(s\) \['out_b'\]; model '\w+' "
            r"has outputs \['out_a', 'out_b'\]",
        ),
        (X, {**Y, "out_c": Y["out_b"]}, r"y is a dict with unknown key\(s\) \['out_c'\]"),
        ([X["a"]], Y, r"fit: got 1 input arrays but model '\w+' takes 2 \(a, b\)"),
        ([X["a"]] * 3, Y, r"got 3 input arrays but model '\w+' takes 2"),
        (X["a"], Y, r"takes 2 inputs \(a, b\); pass a list of arrays or a dict"),
        (
            X,
            [Y["out_a"]],
            r"has 2 outputs \['out_a', 'out_b'\]; give y as a list of 2 arrays or a "
            r"dict keyed by output name, got a list of 1",
        ),
        (X, Y["out_b"], r"give y as a list of 2 arrays .* got one array"),
        (
            {"a": X["a"], "b": np.zeros((3, 4))},
            Y,
            r"the inputs have different numbers of examples "
            r"\(4, 3\)",
        ),
        (X, {**Y, "out_b": np.zeros((3, 1))}, r"x has 4 examples but y\['out_b'\] has 3"),
        (
            {**X, "b": np.zeros((4, 5))},
            Y,
            r"x\['b'\] has shape \(4, 5\) but model '\w+' expects "
            r"\(None, 4\)",
        ),
    ],
)
def test_bad_multi_io_data(model, x, y, message):
    with pytest.raises(ValueError, match=message):
        model.fit(x, y, verbose=0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"loss": {"out_a": "mse", "out_z": "mse"}},
            r"loss has key\(s\) \['out_z'\] that are not "
            r"outputs of model '\w+'; its outputs are \['out_a', 'out_b'\]",
        ),
        ({"loss": ["mse"]}, r"loss is a list of 1 but model '\w+' has 2 output\(s\)"),
        ({"loss": "mse", "loss_weights": [1.0, 2.0, 3.0]}, r"loss_weights is a list of 3"),
        ({"loss": "mse", "loss_weights": {"c": 1.0}}, r"loss_weights has key\(s\) \['c'\]"),
    ],
)
def test_bad_compile_arguments_per_output(model, kwargs, message):
    with pytest.raises(ValueError, match=message):
        model.compile("sgd", **kwargs)


def test_backward_before_a_call_and_with_a_wrong_dy(model):
    with pytest.raises(RuntimeError, match=r"backward\(\) needs a call on arrays first"):
        model.backward(np.zeros((4, 3)))
    model(X)
    with pytest.raises(ValueError, match=r"dy must be shaped like the last outputs"):
        model.backward([np.zeros((4, 3))])
