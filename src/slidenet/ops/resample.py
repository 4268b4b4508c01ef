"""Upsampling, zero padding and cropping of x (N, *spatial, D) along any number of spatial axes.

These are Keras' reshaping layers' math (UpSampling1D/2D/3D, ZeroPadding1D/2D/3D,
Cropping1D/2D/3D); the number of spatial axes is x.ndim - 2. Each is linear in x, so each backward
is the transpose of its forward, exactly:

- zero padding adds ``before`` and ``after`` zeros along each axis; its backward crops them off.
- cropping removes ``before`` and ``after`` cells along each axis; its backward pads zeros back.
- upsampling by integer factors s: ``"nearest"`` repeats every cell s times along each axis (the
  backward sums each s-block); ``"bilinear"`` interpolates linearly along each axis with
  half-pixel centres, as Keras 3 (``ops.image.resize``, i.e. TensorFlow's ``tf.image.resize``)
  and PyTorch's ``interpolate(mode="bilinear", align_corners=False)`` do: output cell o samples
  the input at (o + 0.5) / s - 0.5, clamped to the first and last cells.

For an integer factor, output cell i*s + r (phase r = 0..s-1) sits at offset delta_r =
(r + 0.5) / s - 0.5 from input cell i, always between two neighbours with the same weights for
every i. So linear upsampling is, per phase, a weighted sum of two shifted copies of the
(edge-extended) input, and its backward adds the phase's dy back onto those two shifted slices:
2*s slice operations per axis, no scatter.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from slidenet._validation import fmt_shape, int_tuple
from slidenet.ops.checked import as_op_array
from slidenet.ops.conv3d import crop_nd

INTERPOLATIONS = ("nearest", "bilinear")


def _spatial_axes(x, who: str) -> int:
    """The number of spatial axes of x (N, *spatial, D), at least one."""
    if x.ndim < 3:
        raise ValueError(f"{who}: x must be (N, *spatial, D), got shape {fmt_shape(x.shape)}.")
    return x.ndim - 2


def border_pairs(spec, axes: int, what: str) -> tuple[tuple[int, int], ...]:
    """A padding or cropping spec as one (before, after) pair of ints >= 0 per spatial axis.

    Keras' forms: an int (the same on both sides of every axis); with two or more axes a tuple of
    one int per axis (symmetric) or of one pair per axis; with one axis a pair (before, after)
    (or a tuple holding that one pair).

    >>> border_pairs(1, 2, "padding")
    ((1, 1), (1, 1))
    >>> border_pairs((2, 3), 1, "cropping")
    ((2, 3),)
    >>> border_pairs(((0, 1), 2, (3, 0)), 3, "padding")
    ((0, 1), (2, 2), (3, 0))
    """
    if _is_int(spec):
        spec = (spec,) * axes
    elif axes == 1 and _is_int_pair(spec):
        spec = (spec,)
    try:
        items = tuple(spec)
    except TypeError:
        items = None
    if items is None or len(items) != axes:
        example = "1 or (1, 2)" if axes == 1 else f"1, {(1,) * axes} or {((0, 1),) * axes}"
        raise ValueError(
            f"{what} needs one entry per spatial axis ({axes}), e.g. {example}; got {spec!r}."
        )
    pairs = []
    for item in items:
        pair = (item, item) if _is_int(item) else item
        try:
            before, after = pair
        except (TypeError, ValueError):
            raise ValueError(f"{what}: cannot read {spec!r} as (before, after) pairs.") from None
        if not (_is_int(before) and _is_int(after)) or before < 0 or after < 0:
            raise ValueError(f"{what} values must be ints >= 0, got {spec!r}.")
        pairs.append((int(before), int(after)))
    return tuple(pairs)


def _is_int(v) -> bool:
    return isinstance(v, int | np.integer) and not isinstance(v, bool)


def _is_int_pair(v) -> bool:
    return isinstance(v, list | tuple) and len(v) == 2 and all(_is_int(p) for p in v)


# ----------------------------------------------------------------------------------- zero padding


def zero_pad_forward(x, padding):
    """Zero-pad x (N, *spatial, D) by ``padding`` (see :func:`border_pairs`); returns (y, pads)."""
    axes = _spatial_axes(x, "zero_pad")
    pads = border_pairs(padding, axes, f"zero_pad: padding for x {fmt_shape(x.shape)}")
    return np.pad(x, ((0, 0), *pads, (0, 0))), pads


def zero_pad_backward(dy, pads):
    """dx of :func:`zero_pad_forward`: dy without the padded border (a copy)."""
    return crop_nd(dy, pads).copy()


def zero_pad(x, padding=1):
    """x (N, *spatial, D) with zeros added around each spatial axis.

    >>> zero_pad(np.ones((1, 1, 2, 1)), ((1, 0), (0, 1)))[0, :, :, 0]
    array([[0., 0., 0.],
           [1., 1., 0.]])
    """
    return zero_pad_forward(as_op_array(x, "zero_pad", "x"), padding)[0]


# --------------------------------------------------------------------------------------- cropping


class CropCache(NamedTuple):
    x_shape: tuple
    pairs: tuple


def crop_border_forward(x, cropping):
    """Remove ``cropping`` cells (see :func:`border_pairs`) from the ends of each spatial axis of x
    (N, *spatial, D); returns (y, cache). y is a copy."""
    axes = _spatial_axes(x, "crop_border")
    pairs = border_pairs(cropping, axes, f"crop_border: cropping for x {fmt_shape(x.shape)}")
    for axis, ((a, b), n) in enumerate(zip(pairs, x.shape[1:-1], strict=True), 1):
        if a + b >= n:
            raise ValueError(
                f"crop_border: cropping {pairs} removes {a} + {b} = {a + b} of the {n} cells of "
                f"axis {axis} of x {fmt_shape(x.shape)}; crop at most {n - 1} in total."
            )
    return crop_nd(x, pairs).copy(), CropCache(x.shape, pairs)


def crop_border_backward(dy, cache: CropCache):
    """dx of :func:`crop_border_forward`: dy with the cropped cells back as zeros."""
    return np.pad(dy, ((0, 0), *cache.pairs, (0, 0)))


def crop_border(x, cropping=1):
    """x (N, *spatial, D) without ``cropping`` cells at the ends of each spatial axis.

    >>> crop_border(np.arange(5.0).reshape(1, 5, 1), (1, 2))[0, :, 0]
    array([1., 2.])
    """
    return crop_border_forward(as_op_array(x, "crop_border", "x"), cropping)[0]


# ------------------------------------------------------------------------------------- upsampling


class UpsampleCache(NamedTuple):
    x_shape: tuple
    size: tuple
    interpolation: str


def _phases(s: int):
    """Per phase r of factor s: (shift, a, b) with output i*s + r = a * xe[i + shift] +
    b * xe[i + shift + 1], xe the input extended by one edge cell at each end."""
    for r in range(s):
        delta = (r + 0.5) / s - 0.5  # in (-0.5, 0.5)
        if delta >= 0:  # between cells i and i + 1
            yield r, 1, 1.0 - delta, delta
        else:  # between cells i - 1 and i
            yield r, 0, -delta, 1.0 + delta


def _linear_axis(x, axis: int, s: int):
    """Linear upsampling by s along ``axis`` (half-pixel centres, clamped at the ends)."""
    xa = np.moveaxis(x, axis, 0)
    n = xa.shape[0]
    xe = np.concatenate([xa[:1], xa, xa[-1:]])  # edge extension = clamping
    y = np.empty((n, s, *xa.shape[1:]), x.dtype)
    for r, shift, a, b in _phases(s):
        y[:, r] = a * xe[shift : shift + n] + b * xe[shift + 1 : shift + 1 + n]
    return np.moveaxis(y.reshape(n * s, *xa.shape[1:]), 0, axis)


def _linear_axis_backward(dy, axis: int, s: int):
    """The transpose of :func:`_linear_axis`: each phase's dy back onto its two slices."""
    da = np.moveaxis(dy, axis, 0)
    n = da.shape[0] // s
    phased = da.reshape(n, s, *da.shape[1:])
    dxe = np.zeros((n + 2, *da.shape[1:]), dy.dtype)
    for r, shift, a, b in _phases(s):
        dxe[shift : shift + n] += a * phased[:, r]
        dxe[shift + 1 : shift + 1 + n] += b * phased[:, r]
    dx = dxe[1 : n + 1]
    dx[0] += dxe[0]  # the edge extensions were copies of the first and last cells
    dx[-1] += dxe[-1]
    return np.moveaxis(dx, 0, axis)


def upsample_forward(x, size=2, interpolation="nearest"):
    """Upsample x (N, *spatial, D) by integer factors -> (N, *(n * s), D); returns (y, cache).

    Args:
        size: an int (every spatial axis) or one int per spatial axis.
        interpolation: 'nearest' (repeat each cell) or 'bilinear' (linear along every axis,
            half-pixel centres: Keras' and PyTorch's ``align_corners=False``).
    """
    axes = _spatial_axes(x, "upsample")
    size = int_tuple(size, axes, "upsample: size")
    if interpolation not in INTERPOLATIONS:
        raise ValueError(
            f"upsample: interpolation must be 'nearest' or 'bilinear', got {interpolation!r}."
        )
    y = x
    if interpolation == "nearest":
        n, *sizes, d = x.shape
        expanded = x.reshape(n, *(v for m in sizes for v in (m, 1)), d)
        pairs = list(zip(sizes, size, strict=True))
        tiled = np.broadcast_to(expanded, (n, *(v for pair in pairs for v in pair), d))
        y = tiled.reshape(n, *(m * s for m, s in pairs), d)
    else:
        for axis, s in enumerate(size, 1):
            if s > 1:
                y = _linear_axis(y, axis, s)
        y = np.ascontiguousarray(y)
    return y, UpsampleCache(x.shape, size, interpolation)


def upsample_backward(dy, cache: UpsampleCache):
    """dx (N, *spatial, D) of :func:`upsample_forward`: the transposed resampling."""
    if cache.interpolation == "nearest":
        n, *sizes, d = cache.x_shape
        pairs = zip(sizes, cache.size, strict=True)
        blocks = dy.reshape(n, *(v for pair in pairs for v in pair), d)
        return blocks.sum(axis=tuple(range(2, 2 * len(sizes) + 1, 2)))
    dx = dy
    for axis, s in reversed(list(enumerate(cache.size, 1))):
        if s > 1:
            dx = _linear_axis_backward(dx, axis, s)
    return np.ascontiguousarray(dx)


def upsample(x, size=2, interpolation="nearest"):
    """x (N, *spatial, D) upsampled by integer factors; see :func:`upsample_forward`.

    >>> upsample(np.array([0.0, 4.0]).reshape(1, 2, 1), 2, "bilinear")[0, :, 0]
    array([0., 1., 3., 4.])
    """
    return upsample_forward(as_op_array(x, "upsample", "x"), size, interpolation)[0]
