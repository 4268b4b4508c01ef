"""One test per defect the fuzzers found, named after it (the report lists input, old behaviour,
fix). Each input here made the library crash with an undocumented error, a NumPy message, a
warning, or a silent NaN before the fix.
"""

from __future__ import annotations

import numpy as np
import pytest

import slidenet as sn
from slidenet import filters, losses, metrics, ops
from slidenet import layers as L


# ----- layers -------------------------------------------------------------------------------------
def test_flatten_on_an_empty_batch_returns_an_empty_batch():
    # was: ValueError "cannot reshape array of size 0 into shape (0,newaxis)"
    layer = L.Flatten()
    assert layer(np.zeros((0, 2, 2, 1))).shape == (0, 4)
    assert layer.backward(np.zeros((0, 4))).shape == (0, 2, 2, 1)


@pytest.mark.parametrize("cls", [L.GlobalMaxPooling2D, L.GlobalAveragePooling2D])
def test_global_pooling_layer_on_an_empty_batch(cls):
    # was: ValueError "cannot reshape array of size 0 into shape (0,newaxis,1)"
    layer = cls()
    assert layer(np.zeros((0, 2, 2, 1))).shape == (0, 1)
    assert layer.backward(np.zeros((0, 1))).shape == (0, 2, 2, 1)


def test_batchnorm_training_on_an_empty_batch_keeps_its_statistics():
    # was: RuntimeWarning "Mean of empty slice", then NaN in moving_mean and moving_variance
    layer = L.BatchNormalization()
    layer.build((3,))
    assert layer(np.zeros((0, 3)), training=True).shape == (0, 3)
    np.testing.assert_array_equal(layer.moving_mean, 0.0)
    np.testing.assert_array_equal(layer.moving_variance, 1.0)
    assert layer.backward(np.zeros((0, 3))).shape == (0, 3)
    assert [g is None for g in layer.grads] == [False, False, True, True]


@pytest.mark.parametrize("cls", [L.BatchNormalization, L.Dense, L.Flatten])
def test_examples_with_an_axis_of_size_zero_are_refused(cls):
    # was: BatchNormalization built with zero-size weights and returned (2, 0) silently; Sequential
    # accepted Input((0,))
    layer = cls(2) if cls is L.Dense else cls()
    with pytest.raises(ValueError, match=r"input shape \(0,\) has an axis of size 0"):
        layer(np.zeros((2, 0)))
    with pytest.raises(ValueError, match=r"input_shape \(3, 0\) has an axis of size 0"):
        sn.Sequential([L.Input((3, 0)), L.Flatten()])


@pytest.mark.parametrize("cls", [L.BatchNormalization, L.Dense])
def test_layer_called_without_a_batch_axis(cls):
    # was (BatchNormalization): IndexError "tuple index out of range" in build
    layer = cls(2) if cls is L.Dense else cls()
    with pytest.raises(ValueError, match=r"'.*' expects a batch of examples shaped \(N, ...\)"):
        layer(np.zeros(3))


def test_input_shape_with_none_or_text():
    # was: TypeError "int() argument must be a string, a bytes-like object or a real number"
    with pytest.raises(ValueError, match=r"Dense '.*': input_shape must be one example's shape"):
        L.Dense(2, input_shape=(None, 3))


@pytest.mark.parametrize("dtype, shown", [(complex, "complex128"), (object, "object"), (str, "<U")])
def test_layer_refuses_complex_object_and_string_inputs(dtype, shown):
    # was: ComplexWarning (imaginary part dropped) or "could not convert string to float"
    with pytest.raises(TypeError, match=rf"Dense '.*': x has dtype {shown}"):
        L.Dense(2)(np.ones((1, 2)).astype(dtype))


def test_backward_with_a_gradient_of_the_wrong_shape():
    # was: ValueError "operands could not be broadcast together with shapes (2,4) (2,3)"
    layer = L.Activation("softmax")
    layer(np.zeros((2, 3)))
    with pytest.raises(
        ValueError, match=r"Activation '.*': dy must be shaped like the last output"
    ):
        layer.backward(np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"\(2, 3\) with real numbers, got \(3, 3\)"):
        layer.backward(np.zeros((3, 3)))


def test_backward_before_any_forward_pass():
    # was: AttributeError "'Dense' object has no attribute '_act_cache'"
    layer = L.Dense(2)
    layer.build((3,))
    with pytest.raises(RuntimeError, match=r"Dense '.*': backward\(\) needs a forward pass first"):
        layer.backward(np.zeros((1, 2)))


def test_relu_of_minus_infinity_is_zero():
    # was: RuntimeWarning "invalid value encountered in multiply" and NaN (x * mask)
    y, mask = ops.relu_forward(np.array([-np.inf, -1.0, 0.0, 2.0, np.inf], np.float32))
    np.testing.assert_array_equal(y, [0.0, 0.0, 0.0, 2.0, np.inf])
    assert y.dtype == np.float32 and mask.tolist() == [False, False, False, True, True]


# ----- ops ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("fn", [ops.global_max_pool, ops.global_avg_pool])
def test_global_pool_op_with_no_positions(fn):
    # was: "attempt to get argmax of an empty sequence" / RuntimeWarning "Mean of empty slice"
    with pytest.raises(ValueError, match=r"x \(1, 0, 1\) has no positions to pool over"):
        fn(np.zeros((1, 0, 1)))
    # was: "cannot reshape array of size 0 into shape (0,newaxis,0)"
    assert fn(np.zeros((0, 1, 0), np.float16)).shape == (0, 0)


def test_pool1d_errors_name_the_1d_op():
    # was: "max_pool2d: padding must be ..." and "pool window 1x1 does not fit input 1x0"
    with pytest.raises(ValueError, match=r"^max_pool1d: padding must be 'valid' or 'same'"):
        ops.max_pool1d(np.zeros((1, 4, 1)), 2, padding="full")
    with pytest.raises(
        ValueError, match=r"^avg_pool1d: x \(1, 0, 1\) has a spatial axis of size 0"
    ):
        ops.avg_pool1d(np.zeros((1, 0, 1)), 1)


def test_conv_with_a_kernel_extent_of_zero():
    # was: a (1, 4, 2, 1) output from a 3x3 input without complaint (conv2d); a reshape error
    # (conv1d)
    with pytest.raises(ValueError, match=r"conv2d: w \(0, 2, 1, 1\) has a kernel extent of 0"):
        ops.conv2d(np.zeros((1, 3, 3, 1)), np.zeros((0, 2, 1, 1)))
    with pytest.raises(ValueError, match=r"conv1d: w \(0, 1, 1\) has a kernel extent of 0"):
        ops.conv1d(np.zeros((1, 3, 1)), np.zeros((0, 1, 1)))


def test_conv_with_empty_batch_depth_or_filters():
    # was (float16): "cannot reshape array of size 0 into shape (1,1,0)"
    y = ops.conv1d(np.zeros((0, 1, 0), np.float16), np.zeros((1, 0, 0), np.float16))
    assert y.shape == (0, 1, 0) and y.dtype == np.float16
    y = ops.conv2d(np.zeros((2, 5, 5, 0)), np.zeros((3, 3, 0, 4)), np.arange(4.0), 2, "same")
    assert y.shape == (2, 3, 3, 4) and (y == np.arange(4.0)).all()  # no inputs: just the bias
    assert ops.conv2d(np.zeros((2, 5, 5, 3)), np.zeros((3, 3, 3, 0)), stride=(2, 1)).shape == (
        2,
        2,
        3,
        0,
    )


def test_ops_accept_lists_and_integers_and_refuse_complex():
    # was: AttributeError "'list' object has no attribute 'ndim'"
    y = ops.conv2d([[[[1.0], [2.0]]]], np.ones((1, 2, 1, 1)))
    assert y.shape == (1, 1, 1, 1) and y[0, 0, 0, 0] == 3.0
    assert ops.max_pool2d(np.arange(4).reshape(1, 2, 2, 1)).dtype == np.float32
    with pytest.raises(TypeError, match=r"dense: x has dtype complex128"):
        ops.dense(np.ones((1, 2), complex), np.ones((2, 1)))
    with pytest.raises(ValueError, match=r"conv2d: x is not a rectangular array"):
        ops.conv2d([[1.0], [1.0, 2.0]], np.ones((1, 1, 1, 1)))


def test_conv_output_length_with_a_float_padding():
    # was: TypeError "'float' object is not iterable"
    with pytest.raises(ValueError, match=r"conv_output_length: padding must be an int P"):
        ops.conv_output_length(1, 1, 1, 0.0)


# ----- models -------------------------------------------------------------------------------------
def _model():
    model = sn.Sequential([L.Input((2,)), L.Dense(3, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy")
    return model


def test_predict_on_zero_examples_returns_an_empty_array():
    # was: ValueError "predict: x is empty (shape (0, 2)); nothing to do." (Keras returns (0, 3))
    out = _model().predict(np.zeros((0, 2)))
    assert out.shape == (0, 3) and out.dtype == np.float32


@pytest.mark.parametrize("method", ["fit", "predict"])
def test_ragged_nested_lists(method):
    # was: ValueError "setting an array element with a sequence. The requested array has an
    # inhomogeneous shape after 1 dimensions..."
    model = _model()
    with pytest.raises(ValueError, match=rf"{method}: x is not a rectangular array"):
        getattr(model, method)(*([[1.0, 2.0], [3.0]], [0, 1])[: 2 if method == "fit" else 1])
    if method == "fit":
        with pytest.raises(ValueError, match=r"fit: y is not a rectangular array"):
            model.fit(np.zeros((2, 2)), [[1, 2], [3]], verbose=0)


def test_predict_reports_overflow_instead_of_nan():
    # was: RuntimeWarning "overflow encountered in matmul", then NaN / inf outputs
    model = sn.Sequential([L.Input((2,)), L.Dense(3), L.Dense(2, activation="softmax")])
    weights = model.get_weights()
    weights[0] = np.full((2, 3), 1e30, np.float32)
    model.set_weights(weights)
    with pytest.raises(FloatingPointError, match=r"output of Dense 'dense.*' holds NaN or Inf"):
        model.predict(np.full((1, 2), 1e30))


# ----- filters ------------------------------------------------------------------------------------
@pytest.mark.parametrize("sigma", [1e308, 1e-300, 5e-324])
def test_gaussian_with_extreme_sigma(sigma):
    # was: OverflowError (1e308), RuntimeWarning "divide by zero" and a NaN kernel (1e-300)
    for size in (3, 4):
        k = filters.gaussian(size, sigma)
        assert np.isfinite(k).all() and k.sum() == pytest.approx(1.0)
        if sigma > 1:  # a very wide Gaussian is the box
            np.testing.assert_allclose(k, filters.box(size))
        else:  # a very narrow one is the centre pixel(s)
            assert k.max() == pytest.approx(1.0 if size % 2 else 0.25)


def test_filters_report_overflow():
    # was: RuntimeWarning "overflow encountered in add" / "in cast", then inf in the result
    with pytest.raises(FloatingPointError, match=r"correlate2d: the result overflowed float32"):
        filters.correlate2d(np.full((3, 3), 3e38, np.float32), np.ones((2, 2)))
    with pytest.raises(FloatingPointError, match=r"convolve1d: the result .* does not fit float16"):
        filters.convolve1d(np.full(4, 6e4, np.float16), np.ones(2))


# ----- losses and metrics -------------------------------------------------------------------------
def test_loss_functions_check_predictions_and_label_counts():
    # was: "not enough values to unpack", "operands could not be broadcast", RuntimeWarning
    # "invalid value encountered in scalar divide" (0 examples), "ufunc 'clip' did not contain a
    # loop" (strings)
    scce = losses.sparse_categorical_crossentropy
    with pytest.raises(
        ValueError, match=r"^sparse_categorical_crossentropy needs predictions shaped"
    ):
        scce([0, 1], [0.5, 0.5])
    with pytest.raises(ValueError, match=r"3 labels for 2 predictions"):
        scce([0, 1, 1], np.ones((2, 2)) / 2)
    with pytest.raises(ValueError, match=r"y_pred \(0, 2\) holds no predictions"):
        scce([], np.ones((0, 2)))
    with pytest.raises(TypeError, match=r"y_pred has dtype <U1"):
        scce([0], [["a", "b"]])


def test_a_model_with_image_outputs_and_sparse_cross_entropy():
    # was: "too many values to unpack (expected 2)" from inside fit
    model = sn.Sequential([L.Input((4, 4, 1)), L.Conv2D(3, 1, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match=r"fit: sparse_categorical_crossentropy needs predictions"):
        model.fit(np.zeros((2, 4, 4, 1)), np.zeros(2), verbose=0)


def test_loss_of_float16_probabilities_is_clipped_like_float32():
    # was: -0.0, because 1 - 1e-7 rounds to 1 in float16 and the clip did nothing
    value = losses.sparse_categorical_crossentropy([0], np.array([[1, 0]], np.float16))
    assert value == pytest.approx(-np.log(np.float32(1 - 1e-7)), rel=1e-3)


def test_binary_cross_entropy_of_bool_logits():
    # was: TypeError "The numpy boolean negative, the `-` operator, is not supported"
    assert losses.binary_crossentropy([1], [True], from_logits=True) == pytest.approx(
        np.log1p(np.exp(-1.0))
    )


def test_metrics_check_their_shapes():
    # was: "operands could not be broadcast", "cannot reshape array of size 3 into shape (2,)",
    # "object of type 'float' has no len()"
    with pytest.raises(ValueError, match=r"sparse_categorical_accuracy: 3 labels for predictions"):
        metrics.sparse_categorical_accuracy([0, 1, 2], np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"categorical_accuracy: targets \(3, 3\) and predictions"):
        metrics.categorical_accuracy(np.eye(3), np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"binary_accuracy: 3 targets for 2 predictions"):
        metrics.binary_accuracy([0, 1, 1], [0.2, 0.7])
    with pytest.raises(ValueError, match=r"categorical_accuracy: y_pred must have a batch axis"):
        metrics.categorical_accuracy(1.0, np.float32(1))
    # was: "operands could not be broadcast together with shapes (2,4) (8,)"
    y_pred = np.zeros((2, 4, 1))
    assert metrics.sparse_categorical_accuracy(np.zeros((2, 2, 2), int), y_pred) == 1.0


def test_idx_header_whose_dimensions_overflow_with_a_zero_among_them(tmp_path):
    """Found by fuzz/fuzz_idx.py (atheris, CI): dims 327688 x 16777216 x 134283264 x 0 x 0 hold 0
    elements, but NumPy cannot form that shape ("cannot reshape array of size 0")."""
    import base64

    from slidenet.datasets.utils import IDXFormatError

    path = tmp_path / "crash.idx"
    path.write_bytes(base64.b64decode("AAAIBQAFAAgBAAAACAEAAAAAAAAAAAAA"))
    with pytest.raises(IDXFormatError, match=r"too large for any array; the header is damaged"):
        sn.utils.read_idx(path)
