"""ONNX nodes of the layers that move or rescale pixels (issue 16): UpSampling, ZeroPadding,
Cropping, Resizing, CenterCrop, RandomCrop (its inference form), Rescaling and Normalization.
Called by :func:`slidenet.interop._export_more.export_more`, whose docstring lists the operators.

Nearest resizing of images gathers the rows and columns slidenet picks instead of writing a
Resize: floor((o + 0.5) * n / n_out) has ties that a Resize's float32 scale rounds the other way
(24 -> 14 rows, for one). Bilinear resizing is a Resize with float32 scales whose product with
the input size is the output size.
"""

from __future__ import annotations

import numpy as np

from slidenet.interop._export_more import _f32, _same, layout_axis


# ----- resampling, padding, cropping ------------------------------------------------------------
def _resize(g, x, name, *, scales=None, sizes=None, spatial=None, interpolation="nearest"):
    """Resize of a channels-first ``x`` by integer ``scales`` (nearest: an exact repeat of cells)
    or from ``spatial`` sizes to ``sizes`` (bilinear only), half-pixel centres for bilinear."""
    if interpolation == "bilinear":
        attrs = {"mode": "linear", "coordinate_transformation_mode": "half_pixel"}
    else:  # o // s for integer s: x = o / s, floored
        attrs = {"mode": "nearest", "coordinate_transformation_mode": "asymmetric",
                 "nearest_mode": "floor"}  # fmt: skip
    if scales is None:  # to sizes: float32 scales whose product with n is at least the size
        scales = [_scale_to(n, size) for n, size in zip(spatial, sizes, strict=True)]
    s = g.const(f"{name}/scales", np.array([1, 1, *scales], np.float32))
    return _same(x, g.node("Resize", [x.name, "", s], name, **attrs))


def _scale_to(n: int, size: int) -> np.float32:
    """The float32 scale closest to size / n with floor(n * scale) == size (ONNX's output size,
    in float32 or float64 arithmetic)."""
    scale = np.float32(size / n)
    while float(scale) * n < size:
        scale = np.nextafter(scale, np.float32(np.inf))
    return scale


def _slice(g, x, name, spatial_ranges):
    """x[..., start:stop, ...] on each spatial axis; ``spatial_ranges`` one (start, stop) each."""
    axes = [layout_axis(x, i + 1) for i in range(len(spatial_ranges))]
    key = f"{name}/{x.layout}"
    starts = g.const(f"{key}/starts", np.array([r[0] for r in spatial_ranges], np.int64))
    ends = g.const(f"{key}/ends", np.array([r[1] for r in spatial_ranges], np.int64))
    axes_c = g.const(f"{key}/axes", np.array(axes, np.int64))
    return _same(x, g.node("Slice", [x.name, starts, ends, axes_c], name))


def upsample(g, layer, name, x):
    x = g.channels(x, "first")
    return _resize(g, x, name, scales=layer.size, interpolation=layer.interpolation)


def zero_pad(g, layer, name, x):
    pads = [[0, 0] for _ in range(x.rank)]
    for i, pair in enumerate(layer.pairs):
        pads[layout_axis(x, i + 1)] = list(pair)
    flat = np.array([p[0] for p in pads] + [p[1] for p in pads], np.int64)
    return _same(x, g.node("Pad", [x.name, g.const(f"{name}/pads_{x.layout}", flat)], name))


def crop(g, layer, name, x):
    ranges = [(a, n - b) for (a, b), n in zip(layer.pairs, layer._in, strict=False)]
    return _slice(g, x, name, ranges)


def _crop_resize(g, x, name, image, box, size, interpolation="bilinear"):
    """slidenet's CropResize on images of size ``image`` (H, W): crop ``box`` (top, left, height,
    width) unless it is the whole image, then resize to ``size`` unless the crop has that size.

    Nearest resizing gathers the rows and columns slidenet picks (floor((o + 0.5) * n / n_out),
    crop offset included): exact, where a Resize's float32 scale may round a tie the other way.
    """
    from slidenet.ops.image_ops import resize_matrix

    top, left, height, width = box
    resize = tuple(size) != (height, width)
    if interpolation == "nearest" and resize:
        gathers = []
        axes = zip((top, left), (height, width), size, strict=True)
        for axis, (start, n, n_out) in enumerate(axes, 1):
            picks = start + resize_matrix(n, n_out, "nearest").argmax(axis=1)
            if not np.array_equal(picks, np.arange(image[axis - 1])):
                gathers.append((axis, picks.astype(np.int64)))
        for k, (axis, picks) in enumerate(gathers):
            where = name if k == len(gathers) - 1 else f"{name}/rows"
            index = g.const(f"{name}/{'rows' if axis == 1 else 'columns'}", picks)
            x = _same(x, g.node("Gather", [x.name, index], where, axis=layout_axis(x, axis)))
        return x
    x = g.channels(x, "first")
    if (top, left, height, width) != (0, 0, *image):
        crop = f"{name}/crop" if resize else name
        x = _slice(g, x, crop, [(top, top + height), (left, left + width)])
    if resize:
        x = _resize(g, x, name, sizes=size, spatial=(height, width), interpolation=interpolation)
    return x


def image_layer(g, layer, name, x):
    """Resizing, CenterCrop and RandomCrop (its inference form): a static crop box and size."""
    from slidenet.layers.preprocessing import CenterCrop, Resizing
    from slidenet.ops.image_ops import aspect_crop_box

    H, W = layer._in[:2]
    h, w = layer.height, layer.width
    interpolation = "bilinear"
    if isinstance(layer, Resizing):
        interpolation = layer.interpolation
        box = aspect_crop_box(H, W, h, w) if layer.crop_to_aspect_ratio else (0, 0, H, W)
    elif isinstance(layer, CenterCrop) and H >= h and W >= w:
        box = ((H - h) // 2, (W - w) // 2, h, w)
    else:  # RandomCrop at inference, CenterCrop of a small image: Keras' aspect-ratio window
        box = aspect_crop_box(H, W, h, w)
    return _crop_resize(g, x, name, (H, W), box, (h, w), interpolation)


# ----- preprocessing ----------------------------------------------------------------------------
def rescaling(g, layer, name, x):
    scale, offset = np.asarray(layer.scale), np.asarray(layer.offset)
    if scale.ndim or offset.ndim:  # arrays broadcast against the NHWC example
        x = g.channels(x, "last")
    y = g.node("Mul", [x.name, g.const(f"{name}/scale", _f32(scale))], f"{name}/scaled")
    return _same(x, g.node("Add", [y, g.const(f"{name}/offset", _f32(offset))], name))


def normalization(g, layer, name, x):
    x = g.channels(x, "last")
    mean = g.const(f"{name}/mean", _f32(layer.mean).reshape(layer._bshape))
    std = g.const(f"{name}/std", layer._std(np.float32))
    if layer.invert:
        y = g.node("Mul", [x.name, std], f"{name}/scaled")
        return _same(x, g.node("Add", [y, mean], name))
    y = g.node("Sub", [x.name, mean], f"{name}/centered")
    return _same(x, g.node("Div", [y, std], name))
