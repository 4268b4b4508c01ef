"""Layer errors: raised at construction or build (not deep inside forward), naming the layer, the
numbers that show the problem and a fix. Messages are matched with regexes."""

from __future__ import annotations

import re

import numpy as np
import pytest

import slidenet as sn
from slidenet import layers as L


def test_conv2d_kernel_larger_than_input():
    layer = L.Conv2D(4, 5, name="conv_big")
    with pytest.raises(ValueError) as info:
        layer.build((3, 3, 1))
    msg = str(info.value)
    for part in ("Conv2D 'conv_big'", "5x5", "3x3", "padding='valid'", "padding='same'"):
        assert part in msg, f"{part!r} not in {msg!r}"
    assert not layer.built


def test_conv2d_kernel_too_large_fails_when_added_to_a_model():
    model = sn.Sequential([L.Input((3, 3, 1))])
    with pytest.raises(ValueError, match=r"Conv2D 'conv_in_model'.*5x5.*3x3.*padding='same'"):
        model.add(L.Conv2D(4, 5, name="conv_in_model"))
    assert model.layers == []


def test_conv2d_dilated_kernel_too_large_shows_the_dilated_size():
    with pytest.raises(ValueError, match=r"kernel 3x3 \(dilated to 5x5\).*input 4x4"):
        L.Conv2D(2, 3, dilation_rate=2, name="conv_dil").build((4, 4, 1))


def test_conv2d_rectangular_kernel_too_wide():
    with pytest.raises(ValueError, match=r"Conv2D 'conv_rect'.*kernel 1x7.*input 5x6"):
        L.Conv2D(2, (1, 7), name="conv_rect").build((5, 6, 2))


def test_conv2d_same_padding_fits_what_valid_does_not():
    layer = L.Conv2D(4, 5, padding="same")
    layer.build((3, 3, 1))
    assert layer.output_shape == (None, 3, 3, 4)


def test_conv2d_on_flat_input_asks_for_hwd():
    with pytest.raises(ValueError) as info:
        L.Conv2D(8, 3, name="conv_flat").build((784,))
    msg = str(info.value)
    assert re.search(r"Conv2D 'conv_flat' expects each example shaped \(H, W, D\)", msg), msg
    assert "(784,)" in msg
    assert "input_shape=(H, W, 1)" in msg


def test_conv2d_on_flat_input_in_a_model():
    with pytest.raises(ValueError, match=r"\(H, W, D\).*\(784,\)"):
        sn.Sequential([L.Conv2D(8, 3, input_shape=(784,))])


def test_conv1d_kernel_longer_than_signal():
    with pytest.raises(
        ValueError, match=r"Conv1D 'conv1d_long'.*kernel 9.*length 5.*padding='same'"
    ):
        L.Conv1D(2, 9, name="conv1d_long").build((5, 1))


def test_conv1d_needs_a_channel_axis():
    with pytest.raises(ValueError, match=r"Conv1D 'conv1d_flat'.*\(L, D\).*input_shape=\(L, 1\)"):
        L.Conv1D(2, 3, name="conv1d_flat").build((50,))


@pytest.mark.parametrize(
    "layer, shape, pattern",
    [
        (L.MaxPooling2D(4, name="pool_big"), (3, 3, 2), r"'pool_big'.*pool window 4x4.*input 3x3"),
        (L.AveragePooling2D((2, 5), name="apool"), (4, 4, 1), r"'apool'.*window 2x5.*input 4x4"),
        (L.SumPooling2D(3, name="spool"), (2, 8, 1), r"'spool'.*window 3x3.*input 2x8"),
        (
            L.MaxPooling1D(5, name="pool1d_big"),
            (3, 2),
            r"'pool1d_big'.*window 5 does not fit input length 3.*pool_size<=3",
        ),
    ],
)
def test_pooling_window_larger_than_input(layer, shape, pattern):
    with pytest.raises(ValueError, match=pattern):
        layer.build(shape)


def test_pooling_larger_than_input_is_fine_with_same_padding():
    layer = L.MaxPooling2D(4, padding="same")
    layer.build((3, 3, 2))
    assert layer.output_shape == (None, 1, 1, 2)


@pytest.mark.parametrize(
    "layer, shape, layout",
    [
        (L.MaxPooling2D(2, name="pool_rank"), (8, 8), r"\(H, W, D\)"),
        (L.MaxPooling1D(2, name="pool_rank1d"), (8, 8, 1), r"\(L, D\)"),
        (L.GlobalAveragePooling2D(name="gap_rank"), (8, 3), r"\(H, W, D\)"),
        (L.GlobalMaxPooling1D(name="gmp_rank"), (8,), r"\(L, D\)"),
    ],
)
def test_pooling_wrong_rank(layer, shape, layout):
    with pytest.raises(ValueError, match=re.escape(layer.name) + ".*" + layout):
        layer.build(shape)


@pytest.mark.parametrize("units", [0, -3, 2.5, True, "10"])
def test_dense_units_must_be_positive_int(units):
    with pytest.raises(ValueError, match=r"Dense 'dense_units': units must be a positive integer"):
        L.Dense(units, name="dense_units")


@pytest.mark.parametrize(
    "make",
    [
        lambda: L.Conv2D(2, 3, padding="full", name="bad_pad"),
        lambda: L.Conv1D(2, 3, padding="causal_typo", name="bad_pad"),
        lambda: L.Conv2D(2, 3, padding=(1, 2, 3), name="bad_pad"),
        lambda: L.Conv2D(2, 3, padding=-1, name="bad_pad"),
        lambda: L.MaxPooling2D(2, padding="full", name="bad_pad"),
        lambda: L.AveragePooling1D(2, padding=1, name="bad_pad"),
    ],
)
def test_bad_padding_is_refused_at_construction(make):
    with pytest.raises(ValueError, match=r"'bad_pad'.*padding"):
        make()


def test_bad_padding_string_lists_the_valid_choices():
    with pytest.raises(ValueError, match=r"padding must be 'valid', 'same'.*got 'full'"):
        L.Conv2D(2, 3, padding="full")


@pytest.mark.parametrize(
    "make",
    [
        lambda: L.Activation("rleu"),
        lambda: L.Dense(3, activation="rleu"),
        lambda: L.Conv2D(2, 3, activation="rleu"),
    ],
)
def test_unknown_activation_suggests_the_closest(make):
    with pytest.raises(ValueError, match=r"Unknown activation 'rleu'\. Did you mean 'relu'\?"):
        make()


def test_unknown_activation_far_from_any_name_lists_the_choices():
    with pytest.raises(ValueError) as info:
        L.Activation("zzzz")
    assert "Did you mean" not in str(info.value)
    assert "'relu'" in str(info.value) and "'softmax'" in str(info.value)


@pytest.mark.parametrize("rate", [1.5, 1.0, -0.1, "0.5", None])
def test_dropout_rate_out_of_range(rate):
    with pytest.raises(ValueError, match=r"Dropout 'drop_bad': rate must be a number in \[0, 1\)"):
        L.Dropout(rate, name="drop_bad")


@pytest.mark.parametrize(
    "target, shape, pattern",
    [
        ((5, 5), (4, 6), r"cannot reshape \(4, 6\) \(24 values\) to \(5, 5\) \(25 values\)"),
        ((5, -1), (4, 6), r"cannot reshape \(4, 6\) \(24 values\) to \(5, -1\)"),
        ((-1, -1), (4, 6), r"at most one -1"),
    ],
)
def test_reshape_impossible_target(target, shape, pattern):
    with pytest.raises(ValueError, match=r"Reshape 'reshape_bad': " + pattern):
        L.Reshape(target, name="reshape_bad").build(shape)


@pytest.mark.parametrize(
    "make, bad",
    [
        (lambda: L.Conv2D(2, 3, kernal_initializer="he_normal"), "kernal_initializer"),
        (lambda: L.Dense(3, activaton="relu"), "activaton"),
        (lambda: L.MaxPooling2D(2, stride=2), "stride"),
        (lambda: L.Dropout(0.5, noise_shape=None), "noise_shape"),
        (lambda: L.BatchNormalization(axis=1), "axis"),
        (lambda: L.Flatten(data_format="channels_first"), "data_format"),
    ],
)
def test_unexpected_keyword_argument_is_a_type_error(make, bad):
    with pytest.raises(TypeError, match=r"unexpected keyword argument.*" + bad):
        make()


@pytest.mark.parametrize(
    "make, built_for, called_with",
    [
        (lambda: L.Conv2D(2, 3, name="called_conv"), (2, 5, 5, 1), (2, 6, 6, 1)),
        (lambda: L.Dense(3, name="called_dense"), (2, 4), (2, 5)),
        (lambda: L.MaxPooling2D(2, name="called_pool"), (1, 4, 4, 2), (1, 4, 4, 3)),
        (lambda: L.Flatten(name="called_flatten"), (1, 2, 3), (1, 3, 2)),
        (lambda: L.BatchNormalization(name="called_bn"), (4, 3), (4, 2)),
    ],
)
def test_built_layer_refuses_a_differently_shaped_input(make, built_for, called_with):
    layer = make()
    layer(np.zeros(built_for, np.float32))
    with pytest.raises(ValueError) as info:
        layer(np.zeros(called_with, np.float32))
    msg = str(info.value)
    assert f"'{layer.name}'" in msg
    assert str((None, *built_for[1:])) in msg and str(called_with) in msg
    # another batch size is fine
    assert layer(np.zeros((7, *built_for[1:]), np.float32)).shape[0] == 7


@pytest.mark.parametrize(
    "make, pattern",
    [
        (lambda: L.Conv2D(0, 3), r"filters must be a positive integer"),
        (lambda: L.Conv2D(2, (3, 3, 3)), r"kernel_size must be an int or a tuple of 2 ints"),
        (lambda: L.Conv2D(2, 3, strides=0), r"strides must be a positive integer"),
        (lambda: L.Conv1D(2, (3, 3)), r"kernel_size must be an int or a tuple of 1 ints"),
        (lambda: L.MaxPooling2D(0), r"pool_size must be a positive integer"),
        (lambda: L.BatchNormalization(momentum=1.5), r"momentum must be in \[0, 1\]"),
        (lambda: L.BatchNormalization(epsilon=0), r"epsilon must be > 0"),
    ],
)
def test_other_bad_arguments(make, pattern):
    with pytest.raises(ValueError, match=pattern):
        make()


def test_set_weights_before_build_says_so():
    with pytest.raises(ValueError, match=r"Dense 'unbuilt_dense' is not built yet"):
        L.Dense(2, name="unbuilt_dense").set_weights([np.zeros((3, 2)), np.zeros(2)])


def test_set_weights_refuses_non_numeric_arrays():
    layer = L.Dense(2, name="str_weights")
    layer.build((3,))
    with pytest.raises(TypeError, match=r"'str_weights': kernel must be numeric"):
        layer.set_weights([np.full((3, 2), "a"), np.zeros(2)])
