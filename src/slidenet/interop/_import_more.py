"""Converters of the ONNX ops that became slidenet layers with issue 16: LeakyRelu, Elu, Selu,
Softplus, HardSigmoid, PRelu, ConvTranspose, Pad and Resize (see :mod:`slidenet.interop._importer`
for the state each converter updates).

* LeakyRelu -> LeakyReLU(alpha); Elu -> ELU(alpha); Selu (ONNX's default alpha and gamma, which
  are slidenet's) -> 'selu'; Softplus -> 'softplus'; HardSigmoid with alpha 1/6, beta 1/2 ->
  'hard_sigmoid' (Keras 3's; ONNX's default 0.2 is Keras 2's, refused). The three named ones
  become ``activation=`` of a Conv / Dense they follow, as Relu does.
* PRelu -> PReLU with alpha the slope in NHWC order, ``shared_axes`` where the slope has size 1.
* ConvTranspose (group 1, 1D or 2D, explicit pads) -> Conv2DTranspose / Conv1DTranspose with the
  pads as PyTorch-style crops and output_padding; kernel (D, K, F..) -> (F.., K, D).
* Pad (constant zeros on the spatial axes) -> ZeroPadding1D/2D/3D.
* Resize with constant scales or sizes on the spatial axes: integer scales that repeat cells
  (nearest) -> UpSampling1D/2D/3D, bilinear half-pixel integer scales -> UpSampling2D(bilinear),
  other sizes of images -> Resizing (half-pixel bilinear, or nearest that picks slidenet's
  pixels). Which pixels a nearest mode picks is worked out, not assumed.
"""

from __future__ import annotations

import math

import numpy as np

from slidenet.interop._common import to_channels_last
from slidenet.interop._import_spatial import need_layout

NAMED = {"Selu": "selu", "Softplus": "softplus", "HardSigmoid": "hard_sigmoid"}


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value


def named_activation(imp, node, state) -> None:
    """Selu, Softplus, HardSigmoid: slidenet's activation names (fused like Relu)."""
    from slidenet.interop import _import_ops
    from slidenet.ops.activations import SELU_ALPHA, SELU_SCALE

    a = imp.attrs(node)
    if node.op_type == "Selu":
        alpha, gamma = a.get("alpha", SELU_ALPHA), a.get("gamma", SELU_SCALE)
        if not (math.isclose(alpha, SELU_ALPHA, rel_tol=1e-6)
                and math.isclose(gamma, SELU_SCALE, rel_tol=1e-6)):  # fmt: skip
            raise imp.fail(node, f"alpha={alpha}, gamma={gamma}: slidenet's selu has the defaults.")
    if node.op_type == "HardSigmoid":
        alpha, beta = a.get("alpha", 0.2), a.get("beta", 0.5)
        if not (math.isclose(alpha, 1 / 6, rel_tol=1e-6) and math.isclose(beta, 0.5)):
            raise imp.fail(
                node,
                f"alpha={alpha}, beta={beta}: slidenet's hard_sigmoid is Keras 3's "
                "relu6(x + 3) / 6 (alpha=1/6, beta=0.5).",
            )
    _import_ops.activation(imp, node, state, NAMED[node.op_type])


def leaky_relu_or_elu(imp, node, state) -> None:
    from slidenet.layers.activation import ELU, LeakyReLU

    alpha = float(imp.attrs(node).get("alpha", 0.01 if node.op_type == "LeakyRelu" else 1.0))
    if node.op_type == "LeakyRelu":
        if alpha < 0:
            raise imp.fail(node, f"alpha={alpha} < 0; slidenet's LeakyReLU needs a slope >= 0.")
        layer = LeakyReLU(negative_slope=alpha, name=imp.layer_name(node))
    else:
        layer = ELU(alpha=alpha, name=imp.layer_name(node))
    state["x"] = imp.take(node)
    imp.add(layer, output=state["x"])


def prelu(imp, node, state) -> None:
    from slidenet.layers.activation import PReLU

    need_layout(imp, node, state, ("first", "last"), "PRelu")
    rank = state["rank"]
    slope = np.asarray(imp.const(node, 1), np.float64)
    if slope.ndim > rank or (slope.ndim == rank and slope.shape[0] != 1):
        raise imp.fail(node, f"slope of shape {list(slope.shape)} varies along the batch axis.")
    example = slope.reshape((1,) * (rank - 1 - slope.ndim) + slope.shape[-(rank - 1) :])
    if slope.ndim == 0:
        example = slope.reshape((1,) * (rank - 1))
    if state["layout"] == "first" and rank > 2:  # ONNX (C, H, W) -> slidenet (H, W, C)
        example = example.transpose([p - 1 for p in to_channels_last(rank)[1:]])
    full = imp.shape
    if any(s not in (1, n) for s, n in zip(example.shape, full, strict=True)):
        raise imp.fail(node, f"slope of shape {list(slope.shape)} does not fit the input.")
    shared = [i + 1 for i, (s, n) in enumerate(zip(example.shape, full, strict=True)) if s != n]
    layer = PReLU(shared_axes=shared or None, name=imp.layer_name(node))
    state["x"] = imp.take(node)
    imp.add(layer, [example.astype(np.float32)], output=state["x"])


def conv_transpose(imp, node, state) -> None:
    from slidenet.layers.convolutional_more import Conv1DTranspose, Conv2DTranspose

    w = imp.const(node, 1)
    b = imp.const(node, 2, optional=True)
    a = imp.attrs(node)
    axes = w.ndim - 2
    if axes not in (1, 2) or state["rank"] != axes + 2:
        raise imp.fail(node, f"a {axes}D transposed convolution has no slidenet layer.")
    if int(a.get("group", 1)) != 1:
        raise imp.fail(node, f"group={a['group']}: slidenet's transposed convolutions have one.")
    if "output_shape" in a or _text(a.get("auto_pad", "NOTSET")) not in ("NOTSET", "VALID"):
        raise imp.fail(node, "output_shape / auto_pad: export the graph with explicit pads.")
    need_layout(imp, node, state, ("first",), "ConvTranspose")
    kernel = tuple(int(k) for k in w.shape[2:])
    strides = tuple(int(s) for s in a.get("strides", [1] * axes))
    pads = [int(p) for p in a.get("pads", [0] * 2 * axes)]
    pairs = tuple((pads[i], pads[i + axes]) for i in range(axes))
    extra = tuple(int(p) for p in a.get("output_padding", [0] * axes))
    if any(e >= s for e, s in zip(extra, strides, strict=True)):
        raise imp.fail(node, f"output_padding {list(extra)} is not smaller than the strides.")
    cls = Conv2DTranspose if axes == 2 else Conv1DTranspose

    def make():
        return cls(
            int(w.shape[1]),
            kernel,
            strides=strides,
            padding=pairs if axes == 2 else pairs[0],
            output_padding=extra if any(extra) else None,
            dilation_rate=tuple(int(d) for d in a.get("dilations", [1] * axes)),
            use_bias=b is not None,
            name=imp.layer_name(node),
        )

    kernel_nhwc = w.transpose(*range(2, w.ndim), 1, 0)  # (D, K, F..) -> (F.., K, D)
    y = imp.take(node)
    imp.add_weighted(node, make, [kernel_nhwc] if b is None else [kernel_nhwc, b], y)
    state["x"] = y


def _spatial_onnx_axes(state) -> list[int]:
    rank = state["rank"]
    return list(range(2, rank)) if state["layout"] == "first" else list(range(1, rank - 1))


def pad(imp, node, state) -> None:
    from slidenet.layers import reshaping

    a = imp.attrs(node)
    need_layout(imp, node, state, ("first", "last"), "Pad")
    rank = state["rank"]
    if _text(a.get("mode", "constant")) != "constant":
        raise imp.fail(node, f"mode={_text(a['mode'])!r}; slidenet pads with zeros.")
    value = imp.const(node, 2, optional=True)
    if value is not None and value.size and float(value.reshape(-1)[0]) != 0:
        raise imp.fail(node, f"constant_value {float(value.reshape(-1)[0])}; slidenet pads zeros.")
    flat = [int(p) for p in imp.const(node, 1).reshape(-1)]
    axes = imp.const(node, 3, optional=True)
    axes = list(range(rank)) if axes is None else [int(x) % rank for x in axes.reshape(-1)]
    if len(flat) != 2 * len(axes):
        raise imp.fail(node, f"{len(flat)} pads for {len(axes)} axes.")
    pairs = {ax: (flat[i], flat[i + len(axes)]) for i, ax in enumerate(axes)}
    spatial = _spatial_onnx_axes(state)
    if any(p != (0, 0) for ax, p in pairs.items() if ax not in spatial) or rank not in (3, 4, 5):
        raise imp.fail(node, "only padding of the spatial axes is a ZeroPadding layer.")
    if any(v < 0 for p in pairs.values() for v in p):
        raise imp.fail(node, "negative pads (a crop) have no ZeroPadding layer.")
    spec = tuple(pairs.get(ax, (0, 0)) for ax in spatial)
    cls = getattr(reshaping, f"ZeroPadding{rank - 2}D")
    state["x"] = imp.take(node)
    imp.add(cls(spec[0] if rank == 3 else spec, name=imp.layer_name(node)), output=state["x"])


def _source(o, n_in, n_out, scale, mode):
    """ONNX Resize's input coordinate of output index ``o`` along one axis."""
    if mode == "asymmetric":
        return o / scale
    if mode == "tf_half_pixel_for_nn":
        return (o + 0.5) / scale
    if mode == "align_corners":
        return o * (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0 * o
    if mode == "pytorch_half_pixel" and n_out == 1:
        return 0.0 * o
    return (o + 0.5) / scale - 0.5  # half_pixel, pytorch_half_pixel


def _nearest_picks(n_in, n_out, scale, mode, rounding):
    x = _source(np.arange(n_out, dtype=np.float64), n_in, n_out, scale, mode)
    rounded = {
        "round_prefer_floor": np.ceil(x - 0.5),
        "round_prefer_ceil": np.floor(x + 0.5),
        "floor": np.floor(x),
        "ceil": np.ceil(x),
    }[rounding]
    return np.clip(rounded, 0, n_in - 1).astype(np.int64)


def resize(imp, node, state) -> None:
    from slidenet.layers import preprocessing, reshaping

    a = imp.attrs(node)
    need_layout(imp, node, state, ("first", "last"), "Resize")
    rank, layout = state["rank"], state["layout"]
    mode = _text(a.get("mode", "nearest"))
    coords = _text(a.get("coordinate_transformation_mode", "half_pixel"))
    rounding = _text(a.get("nearest_mode", "round_prefer_floor"))
    if imp.opset < 11:  # Resize-10: (X, scales)
        scales, sizes = imp.const(node, 1), None
    else:
        scales = imp.const(node, 2, optional=True) if len(node.input) > 2 else None
        sizes = imp.const(node, 3, optional=True) if len(node.input) > 3 else None
    by_size = sizes is not None and sizes.size > 0
    values = sizes if by_size else scales
    if values is None or not values.size:
        raise imp.fail(node, "neither scales nor sizes are given as constants.")
    axes = [int(x) % rank for x in a.get("axes", range(rank))]
    values = [float(v) for v in values.reshape(-1)]
    if len(values) != len(axes):
        raise imp.fail(node, f"{len(values)} scales / sizes for {len(axes)} axes.")
    spatial = _spatial_onnx_axes(state)
    n_in = dict(zip(spatial, imp.shape[:-1], strict=True))
    channels = 1 if layout == "first" else rank - 1
    for ax, v in zip(axes, values, strict=True):
        if ax == channels and v != (imp.shape[-1] if by_size else 1.0):
            raise imp.fail(node, "it resizes the channel axis.")
        if ax == 0 and not by_size and v != 1.0:
            raise imp.fail(node, "it resizes the batch axis.")
    given = dict(zip(axes, values, strict=True))
    out, scale = {}, {}
    for ax in spatial:
        if by_size:
            out[ax] = int(given.get(ax, n_in[ax]))
            scale[ax] = out[ax] / n_in[ax]
        else:
            scale[ax] = given.get(ax, 1.0)
            out[ax] = int(math.floor(n_in[ax] * scale[ax]))
    if min(out.values()) < 1:
        raise imp.fail(node, f"an output size of {min(out.values())}.")
    if mode not in ("nearest", "linear") or (mode == "linear" and int(a.get("antialias", 0))):
        raise imp.fail(node, f"mode={mode!r}: slidenet resizes by 'nearest' or plain 'linear'.")
    if _text(a.get("keep_aspect_ratio_policy", "stretch")) != "stretch":
        raise imp.fail(node, "keep_aspect_ratio_policy other than 'stretch'.")
    if coords in ("tf_crop_and_resize", "half_pixel_symmetric"):
        raise imp.fail(node, f"coordinate_transformation_mode={coords!r} has no slidenet layer.")
    ins = [n_in[ax] for ax in spatial]
    outs = [out[ax] for ax in spatial]
    factors = [o // n if o % n == 0 else None for n, o in zip(ins, outs, strict=True)]
    y = imp.take(node)
    name = imp.layer_name(node)
    if mode == "nearest":
        picks = [
            _nearest_picks(n, o, scale[ax], coords, rounding)
            for n, o, ax in zip(ins, outs, spatial, strict=True)
        ]
        repeat = all(
            f is not None and np.array_equal(p, np.arange(o) // f)
            for p, f, o in zip(picks, factors, outs, strict=True)
        )
        if repeat and all(f >= 1 for f in factors):
            layer = getattr(reshaping, f"UpSampling{rank - 2}D")(
                factors[0] if rank == 3 else tuple(factors), name=name
            )
        elif rank == 4 and all(
            np.array_equal(p, np.minimum((2 * np.arange(o) + 1) * n // (2 * o), n - 1))
            for p, n, o in zip(picks, ins, outs, strict=True)
        ):
            layer = preprocessing.Resizing(*outs, interpolation="nearest", name=name)
        else:
            raise imp.fail(
                node,
                f"nearest resizing with coordinate_transformation_mode={coords!r} and "
                f"nearest_mode={rounding!r} picks pixels that no slidenet layer picks.",
            )
    else:
        half_pixel = coords == "half_pixel" or (coords == "pytorch_half_pixel" and min(outs) > 1)
        if rank != 4 or not half_pixel:
            raise imp.fail(
                node,
                "linear resizing is bilinear of images (rank 4) with half-pixel centres in "
                f"slidenet; got rank {rank}, coordinate_transformation_mode={coords!r}.",
            )
        if all(f is not None and f >= 1 for f in factors):
            layer = reshaping.UpSampling2D(tuple(factors), interpolation="bilinear", name=name)
        else:
            layer = preprocessing.Resizing(*outs, interpolation="bilinear", name=name)
    state["x"] = y
    imp.add(layer, output=y)


HANDLERS = {
    "LeakyRelu": leaky_relu_or_elu,
    "Elu": leaky_relu_or_elu,
    "Selu": named_activation,
    "Softplus": named_activation,
    "HardSigmoid": named_activation,
    "PRelu": prelu,
    "ConvTranspose": conv_transpose,
    "Pad": pad,
    "Resize": resize,
}
