"""Padding and output-size arithmetic (slidenet.ops.shapes), and source-level contracts of ops/."""

import math
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ops_helpers import tf_same_pads

import slidenet.ops
from slidenet.ops import conv2d, conv_output_length, max_pool2d, reference
from slidenet.ops.shapes import (
    effective_size,
    is_tiled,
    output_length,
    resolve_padding,
    same_pads,
    window_math,
)

# ------------------------------------------------------------------------- golden (the lectures)


def test_lecture_32_input_5_filter_pad_2_keeps_32():
    assert conv_output_length(32, 5, 1, 2) == 32


def test_lecture_7_input_3_filter_stride_3_does_not_tile():
    with pytest.raises(ValueError, match=re.escape("(7 - 3)/3 + 1 = 2.33")):
        conv_output_length(7, 3, stride=3)


@pytest.mark.parametrize(
    ("n", "f", "stride", "padding", "out"),
    [(7, 3, 1, 0, 5), (7, 3, 2, 0, 3), (28, 5, 1, 2, 28), (227, 11, 4, 0, 55), (5, 3, 2, 1, 3)],
)
def test_lecture_output_sizes(n, f, stride, padding, out):
    assert conv_output_length(n, f, stride, padding) == out


def test_dilation_2_of_a_3x3_kernel_covers_5x5():
    assert effective_size(3, 2) == 5
    assert conv_output_length(5, 3, dilation=2) == 1
    assert conv_output_length(9, 3, dilation=2) == 5


def test_filter_larger_than_input_shows_the_arithmetic():
    with pytest.raises(ValueError, match=re.escape("(3 - 5)/1 + 1 = -1 < 1")):
        conv_output_length(3, 5)


def test_error_names_the_dilated_extent():
    with pytest.raises(ValueError, match=re.escape("5 (= (3 - 1)*2 + 1)")):
        conv_output_length(4, 3, dilation=2)


@pytest.mark.parametrize(
    ("n", "f", "s", "pads"),
    [(28, 5, 1, (2, 2)), (7, 2, 2, (0, 1)), (5, 3, 2, (1, 1)), (6, 3, 2, (0, 1)), (8, 3, 3, (0, 1)),
     (4, 4, 1, (1, 2)), (9, 1, 2, (0, 0)), (10, 4, 3, (1, 2))],
)  # fmt: skip
def test_same_pads_tensorflow_values(n, f, s, pads):
    """Values TensorFlow's 'same' gives (total padding split with the extra at the end)."""
    assert same_pads(n, f, s) == pads
    assert conv_output_length(n, f, s, "same") == math.ceil(n / s)


@pytest.mark.parametrize(
    ("padding", "expected"),
    [
        ("valid", ((0, 0), (0, 0))),
        ("VALID", ((0, 0), (0, 0))),
        ("same", ((1, 1), (0, 1))),
        (2, ((2, 2), (2, 2))),
        ((1, 3), ((1, 1), (3, 3))),
        (((1, 2), (0, 3)), ((1, 2), (0, 3))),
    ],
)
def test_resolve_padding_forms(padding, expected):
    assert resolve_padding(padding, (6, 7), (3, 2), (1, 2), (1, 1)) == expected


@pytest.mark.parametrize(
    ("padding", "message"),
    [
        ("full", "padding must be 'valid', 'same'"),
        (-1, "padding values must be ints >= 0"),
        ((1, 2, 3), "needs one entry per spatial axis"),
        (((1, 2), (0, -3)), "padding values must be ints >= 0"),
        (((1, 2, 3), (0, 3)), "cannot read padding"),
        (1.5, "needs one entry per spatial axis"),
    ],
)
def test_resolve_padding_rejects(padding, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        resolve_padding(padding, (6, 6), (3, 3), (1, 1), (1, 1))


def test_window_math_text():
    assert window_math(28, 5, 1, (2, 2)) == "(28 - 5 + 2*2)/1 + 1 = 28"
    assert window_math(8, 3, 3, (0, 0)) == "(8 - 3)/3 + 1 = 2.67 -> 2"
    assert is_tiled(7, 3, 2, (0, 0)) and not is_tiled(8, 3, 3, (0, 0))


# ------------------------------------------------------------------------- hypothesis properties

sizes = st.integers(1, 64)
filters = st.integers(1, 9)
strides = st.integers(1, 5)
paddings = st.integers(0, 4)
dilations = st.integers(1, 3)


@settings(max_examples=100, deadline=None)
@given(n=sizes, f=filters, s=strides, p=paddings, d=dilations)
def test_conv_output_length_is_the_number_of_window_positions(n, f, s, p, d):
    fe = (f - 1) * d + 1
    if (n + 2 * p - fe) % s != 0 or n + 2 * p < fe:
        with pytest.raises(ValueError, match=re.escape(f"({n} - {fe}") + r".*/" + str(s) + " "):
            conv_output_length(n, f, s, p, d)
    else:
        assert conv_output_length(n, f, s, p, d) == len(range(0, n + 2 * p - fe + 1, s))


@settings(max_examples=60, deadline=None)
@given(n=sizes, f=filters, s=strides, before=paddings, after=paddings, d=dilations)
def test_conv_output_length_asymmetric_padding(n, f, s, before, after, d):
    fe, total = (f - 1) * d + 1, before + after
    if (n + total - fe) % s != 0 or n + total < fe:
        with pytest.raises(ValueError):
            conv_output_length(n, f, s, (before, after), d)
    else:
        expected = len(range(0, n + total - fe + 1, s))
        assert conv_output_length(n, f, s, (before, after), d) == expected


@settings(max_examples=100, deadline=None)
@given(n=sizes, f=filters, s=strides, d=dilations)
def test_same_padding_gives_ceil_n_over_s(n, f, s, d):
    before, after = same_pads(n, f, s, d)
    assert (before, after) == tf_same_pads(n, f, s, d)
    assert 0 <= after - before <= 1  # the extra element goes at the end
    assert output_length(n, f, s, (before, after), d) == math.ceil(n / s)
    assert conv_output_length(n, f, s, "same", d) == math.ceil(n / s)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 2),
    h=st.integers(1, 9),
    w=st.integers(1, 9),
    fh=st.integers(1, 4),
    fw=st.integers(1, 4),
    s=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    d=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    padding=st.one_of(st.sampled_from(["valid", "same"]), st.integers(0, 2)),
)
def test_conv2d_output_shape_matches_formula(n, h, w, fh, fw, s, d, padding):
    x, k = np.zeros((n, h, w, 2)), np.zeros((fh, fw, 2, 3))
    if padding == "same":
        expected = (math.ceil(h / s[0]), math.ceil(w / s[1]))
    else:
        p = 0 if padding == "valid" else padding
        expected = tuple(
            (size + 2 * p - ((f - 1) * dil + 1)) // st_ + 1
            for size, f, st_, dil in zip((h, w), (fh, fw), s, d, strict=True)
        )
    if min(expected) < 1:
        with pytest.raises(ValueError, match="does not fit input"):
            conv2d(x, k, stride=s, padding=padding, dilation=d)
    else:
        assert conv2d(x, k, stride=s, padding=padding, dilation=d).shape == (n, *expected, 3)


@settings(max_examples=60, deadline=None)
@given(
    h=st.integers(1, 9),
    w=st.integers(1, 9),
    pool=st.tuples(st.integers(1, 4), st.integers(1, 4)),
    s=st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 3))),
    padding=st.sampled_from(["valid", "same"]),
)
def test_pool_output_shape_matches_formula_and_reference(h, w, pool, s, padding):
    x = np.arange(h * w * 2, dtype=np.float64).reshape(1, h, w, 2)
    strides = pool if s is None else s
    if padding == "same":
        expected = (math.ceil(h / strides[0]), math.ceil(w / strides[1]))
    else:
        expected = ((h - pool[0]) // strides[0] + 1, (w - pool[1]) // strides[1] + 1)
    if min(expected) < 1:
        with pytest.raises(ValueError, match="does not fit input"):
            max_pool2d(x, pool, s, padding)
    else:
        y = max_pool2d(x, pool, s, padding)
        assert y.shape == (1, *expected, 2)
        np.testing.assert_array_equal(y, reference.max_pool2d(x, pool, s, padding))


# ----------------------------------------------------------------------- source-level contracts


def _fast_op_sources():
    folder = Path(slidenet.ops.__file__).parent
    return {p.name: p.read_text() for p in sorted(folder.glob("*.py")) if p.name != "reference.py"}


def test_fast_ops_never_use_add_at():
    """np.add.at is the slow unbuffered scatter; backward passes use strided slices or GEMMs."""
    sources = _fast_op_sources()
    assert {"conv.py", "pool.py", "im2col.py"} <= set(sources)
    offenders = [name for name, text in sources.items() if "add.at" in text]
    assert offenders == []


def test_reference_covers_every_public_op():
    """Every public forward op in slidenet.ops has a loop version in slidenet.ops.reference."""
    forward_ops = [
        "conv2d", "conv1d", "max_pool2d", "avg_pool2d", "sum_pool2d", "max_pool1d", "avg_pool1d",
        "global_max_pool", "global_avg_pool", "dense", "relu", "sigmoid", "tanh", "softmax",
        "softmax_cross_entropy",
    ]  # fmt: skip
    for name in forward_ops:
        assert callable(getattr(slidenet.ops, name)), name
        assert callable(getattr(reference, name)), name
    for name in ["conv2d_backward", "conv1d_backward", "pool2d_backward", "pool1d_backward",
                 "global_pool_backward", "dense_backward", "relu_backward", "sigmoid_backward",
                 "tanh_backward", "softmax_backward", "batchnorm", "batchnorm_backward",
                 "correlate2d_single"]:  # fmt: skip
        assert callable(getattr(reference, name)), name
