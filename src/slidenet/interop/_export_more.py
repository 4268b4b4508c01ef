"""ONNX nodes of the layers added with Keras' CNN toolbox (issue 16), and of every activation name.

:func:`export_more` returns the output Value of one call, or None for a layer it does not know
(the caller then raises UnsupportedOnnxError naming the layer). Each layer works in the layout
its ONNX operator wants ('first' for ConvTranspose, Conv and Resize; 'last' where its weights are
shaped on the NHWC example, as LayerNormalization's); elementwise ones keep their input's layout.
Constants that depend on the layout carry it in their key, so a shared layer called on tensors of
both layouts gets the right ones.

Layer -> ONNX operators:

* LeakyReLU -> LeakyRelu, ELU -> Elu, PReLU -> PRelu (alpha as its slope), Softmax -> Softmax
  (several axes: Exp(x - ReduceMax) / ReduceSum).
* activation names: leaky_relu -> LeakyRelu(0.2), elu -> Elu, selu -> Selu, softplus -> Softplus,
  hard_sigmoid -> HardSigmoid(1/6, 1/2), swish / silu -> x * Sigmoid(x), gelu -> Gelu (opset 20+)
  or 0.5 x (1 + Erf(x / sqrt 2)).
* LayerNormalization -> LayerNormalization (opset 17+, axes at the end of the NHWC tensor), else
  ReduceMean / Sub / Mul / Sqrt / Div; GroupNormalization -> Reshape (N, pre, G, C/G, post), the
  same standardisation over (pre, C/G, post), Reshape back, Mul gamma, Add beta.
* Conv2DTranspose / Conv1DTranspose -> ConvTranspose with explicit pads and output_padding (Keras'
  'same', 'valid' and output_padding become the crop and extension they are); kernel
  (Fh, Fw, K, D) written as (D, K, Fh, Fw).
* DepthwiseConv2D -> Conv(group=D), kernel (Fh, Fw, D, M) as (D*M, 1, Fh, Fw); SeparableConv2D ->
  that Conv (no bias), then a 1x1 Conv with the pointwise kernel and the bias.
* UpSampling1D/2D/3D -> Resize (nearest: asymmetric + floor, an exact repeat; bilinear: linear,
  half_pixel). ZeroPadding -> Pad; Cropping -> Slice.
* Rescaling -> Mul, Add; Normalization -> Sub, Div (invert: Mul, Add), the standard deviation
  computed as the layer does (at least 1e-7).
* Resizing -> (Slice for crop_to_aspect_ratio) Resize with half_pixel linear and float32 scales
  giving the exact output size; nearest: Gather of the rows and columns slidenet picks
  (floor((o + 0.5) * H / Ho), exact). CenterCrop -> Slice (Slice + Resize for an image smaller
  than the window); RandomCrop -> its inference form (the centred aspect-ratio window, resized).
* RandomFlip, RandomTranslation, RandomRotation, RandomZoom, RandomContrast, RandomBrightness:
  nothing (the identity at inference).
"""

from __future__ import annotations

import math

import numpy as np

from slidenet.interop._common import to_channels_first

ELEMENTWISE_ACTIVATIONS = {
    "relu": ("Relu", {}),
    "sigmoid": ("Sigmoid", {}),
    "tanh": ("Tanh", {}),
    "leaky_relu": ("LeakyRelu", {"alpha": 0.2}),  # keras.activations.leaky_relu's default
    "elu": ("Elu", {"alpha": 1.0}),
    "softplus": ("Softplus", {}),
    "hard_sigmoid": ("HardSigmoid", {"alpha": 1 / 6, "beta": 0.5}),
}


def _f32(array) -> np.ndarray:
    return np.ascontiguousarray(array, dtype=np.float32)


def _same(x, name: str):
    """A Value like ``x`` (rank and layout) named ``name``."""
    return type(x)(name, x.rank, x.layout)


def _scalar(g, value: float) -> str:
    return g.const(f"const/{value!r}", np.array(value, np.float32))


def layout_axis(x, axis: int) -> int:
    """Where NHWC axis ``axis`` (batch = 0, non-negative) is in ``x``'s layout."""
    if x.layout == "first" and x.rank > 2:
        return to_channels_first(x.rank).index(axis)
    return axis


def example_in_layout(x, array: np.ndarray) -> np.ndarray:
    """An array shaped like one NHWC example (rank x.rank - 1), in ``x``'s layout."""
    if x.layout == "first" and x.rank > 2 and array.ndim == x.rank - 1:
        return array.transpose([p - 1 for p in to_channels_first(x.rank)[1:]])
    return array


def reduce(g, op: str, x: str, axes, name: str, keepdims: int = 1) -> str:
    """Reduce* over ``axes``: an input from opset 18 (ReduceSum: 13), an attribute before."""
    axes = [int(a) for a in axes]
    if op == "ReduceSum" or g.opset >= 18:
        key = f"{name}/axes_{'_'.join(map(str, axes))}"
        return g.node(op, [x, g.const(key, np.array(axes, np.int64))], name, keepdims=keepdims)
    return g.node(op, [x], name, axes=axes, keepdims=keepdims)


def activation_value(g, act: str, x, name: str):
    """The nodes of activation ``act`` (a slidenet name) on ``x``; x itself for 'linear'."""
    if act == "linear":
        return x
    out = f"{name}/{act}"
    if act in ELEMENTWISE_ACTIVATIONS:
        op, attrs = ELEMENTWISE_ACTIVATIONS[act]
        return _same(x, g.node(op, [x.name], out, **attrs))
    if act == "softmax":
        axis = 1 if (x.layout == "first" and x.rank > 2) else -1
        return _same(x, g.node("Softmax", [x.name], out, axis=axis))
    if act == "selu":
        from slidenet.ops.activations import SELU_ALPHA, SELU_SCALE

        y = g.node("Selu", [x.name], out, alpha=SELU_ALPHA, gamma=SELU_SCALE)
        return _same(x, y)
    if act in ("silu", "swish"):
        s = g.node("Sigmoid", [x.name], f"{out}/sigmoid")
        return _same(x, g.node("Mul", [x.name, s], out))
    if act == "gelu":
        if g.opset >= 20:
            return _same(x, g.node("Gelu", [x.name], out))
        scaled = g.node("Mul", [x.name, _scalar(g, 1 / math.sqrt(2))], f"{out}/scaled")
        erf = g.node("Erf", [scaled], f"{out}/erf")
        cdf2 = g.node("Add", [erf, _scalar(g, 1.0)], f"{out}/one_plus_erf")
        half = g.node("Mul", [x.name, _scalar(g, 0.5)], f"{out}/half_x")
        return _same(x, g.node("Mul", [half, cdf2], out))
    return None


# ----- activation layers ------------------------------------------------------------------------
def _softmax_layer(g, layer, name, x):
    axes = [layout_axis(x, a) for a in layer._axes]
    if len(axes) == 1:
        return _same(x, g.node("Softmax", [x.name], name, axis=axes[0]))
    peak = reduce(g, "ReduceMax", x.name, axes, f"{name}/max")
    e = g.node("Exp", [g.node("Sub", [x.name, peak], f"{name}/shifted")], f"{name}/exp")
    total = reduce(g, "ReduceSum", e, axes, f"{name}/sum")
    return _same(x, g.node("Div", [e, total], name))


def _prelu(g, layer, name, x):
    slope = example_in_layout(x, _f32(layer.alpha))
    return _same(x, g.node("PRelu", [x.name, g.const(f"{name}/alpha_{x.layout}", slope)], name))


# ----- normalisation ----------------------------------------------------------------------------
def _standardize(g, x: str, axes, eps: float, name: str) -> str:
    mean = reduce(g, "ReduceMean", x, axes, f"{name}/mean")
    d = g.node("Sub", [x, mean], f"{name}/centered")
    var = reduce(g, "ReduceMean", g.node("Mul", [d, d], f"{name}/squared"), axes, f"{name}/var")
    std = g.node("Sqrt", [g.node("Add", [var, _scalar(g, eps)], f"{name}/var_eps")], f"{name}/std")
    return g.node("Div", [d, std], f"{name}/normalized")


def _affine(g, layer, name, y: str, bshape) -> str:
    """y * gamma + beta with the weights reshaped to ``bshape`` (None: as they are)."""
    gamma, beta = layer._params()
    if gamma is not None:
        w = _f32(gamma) if bshape is None else _f32(gamma).reshape(bshape)
        y = g.node("Mul", [y, g.const(f"{name}/gamma", w)], f"{name}/scaled")
    if beta is not None:
        w = _f32(beta) if bshape is None else _f32(beta).reshape(bshape)
        y = g.node("Add", [y, g.const(f"{name}/beta", w)], f"{name}/shifted")
    return y


def _layernorm(g, layer, name, x):
    x = g.channels(x, "last")
    axes = tuple(layer._axes)
    gamma, beta = layer._params()
    if g.opset >= 17 and axes == tuple(range(axes[0], x.rank)):
        shape = tuple(layer._in[a - 1] for a in axes)
        scale = _f32(np.ones(shape) if gamma is None else gamma)
        inputs = [x.name, g.const(f"{name}/gamma", scale)]
        if beta is not None:
            inputs.append(g.const(f"{name}/beta", _f32(beta)))
        y = g.node("LayerNormalization", inputs, name, axis=axes[0], epsilon=layer.epsilon)
        return _same(x, y)
    bshape = [1] * x.rank
    for a in axes:
        bshape[a] = layer._in[a - 1]
    y = _affine(g, layer, name, _standardize(g, x.name, axes, layer.epsilon, name), bshape)
    return _same(x, y)


def _groupnorm(g, layer, name, x):
    x = g.channels(x, "last")
    example, axis, groups = tuple(layer._in), layer._axis, layer._groups
    c = example[axis - 1]
    pre, post = int(np.prod(example[: axis - 1])), int(np.prod(example[axis:]))
    split = g.const(
        f"{name}/grouped_shape", np.array([0, pre, groups, c // groups, post], np.int64)
    )
    xg = g.node("Reshape", [x.name, split], f"{name}/grouped")
    y = _standardize(g, xg, (1, 3, 4), layer.epsilon, name)
    back = g.const(f"{name}/shape", np.array([0, *example], np.int64))
    y = g.node("Reshape", [y, back], f"{name}/ungrouped")
    bshape = [1] * x.rank
    bshape[axis] = c
    return _same(x, _affine(g, layer, name, y, bshape))


# ----- convolutions -----------------------------------------------------------------------------
def _flat(pairs) -> list[int]:
    return [int(p[0]) for p in pairs] + [int(p[1]) for p in pairs]


def _conv_transpose(g, layer, name, x):
    from slidenet.ops.conv_transpose import conv_transpose_geometry

    x = g.channels(x, "first")
    geo = conv_transpose_geometry(
        tuple(layer._in[:-1]),
        layer.kernel_size,
        layer.strides,
        layer._padding_spec(),
        layer.output_padding,
        layer.dilation_rate,
        who=layer.label,
    )
    pads, extra = [], []
    for start, out, full in zip(geo.starts, geo.out, geo.full, strict=True):
        end = full - start - out  # < 0: the output reaches past the full spread (zeros + bias)
        pads.append((start, max(end, 0)))
        extra.append(max(-end, 0))
    rank = layer.rank
    kernel = _f32(layer.kernel).transpose(rank + 1, rank, *range(rank))  # -> (D, K, F..)
    inputs = [x.name, g.const(f"{name}/kernel", kernel)]
    if layer.use_bias:
        inputs.append(g.const(f"{name}/bias", _f32(layer.bias)))
    attrs = {
        "kernel_shape": list(layer.kernel_size),
        "strides": list(layer.strides),
        "dilations": list(layer.dilation_rate),
        "pads": _flat(pads),
    }
    if any(extra):
        attrs["output_padding"] = extra
    y = _same(x, g.node("ConvTranspose", inputs, name, **attrs))
    return activation_value(g, layer.activation, y, name)


def _depthwise(g, layer, name, x, bias=True):
    from slidenet.ops.conv import conv2d_geometry

    x = g.channels(x, "first")
    pads, strides, dilations, _ = conv2d_geometry(
        (1, *layer._in), layer.kernel_size, layer.strides, layer.padding, layer.dilation_rate,
        who=layer.label,
    )  # fmt: skip
    fh, fw, d, m = layer.depthwise_kernel.shape
    kernel = _f32(layer.depthwise_kernel).transpose(2, 3, 0, 1).reshape(d * m, 1, fh, fw)
    inputs = [x.name, g.const(f"{name}/depthwise_kernel", kernel)]
    if bias and layer.use_bias:
        inputs.append(g.const(f"{name}/bias", _f32(layer.bias)))
    y = g.node(
        "Conv",
        inputs,
        name if bias else f"{name}/depthwise",
        kernel_shape=[fh, fw],
        strides=list(strides),
        dilations=list(dilations),
        pads=_flat(pads),
        group=d,
    )
    y = _same(x, y)
    return activation_value(g, layer.activation, y, name) if bias else y


def _separable(g, layer, name, x):
    h = _depthwise(g, layer, name, x, bias=False)
    kernel = _f32(layer.pointwise_kernel).transpose(3, 2, 0, 1)  # (1, 1, DM, K) -> (K, DM, 1, 1)
    inputs = [h.name, g.const(f"{name}/pointwise_kernel", kernel)]
    if layer.use_bias:
        inputs.append(g.const(f"{name}/bias", _f32(layer.bias)))
    y = _same(h, g.node("Conv", inputs, name, kernel_shape=[1, 1]))
    return activation_value(g, layer.activation, y, name)


def export_more(g, layer, name: str, x):
    """The output Value of one call of ``layer`` (a layer of issue 16) on ``x``, or None."""
    from slidenet.interop import _export_images as img
    from slidenet.layers import activation as act
    from slidenet.layers import augmentation as aug
    from slidenet.layers import convolutional_more as conv
    from slidenet.layers import normalization as norm
    from slidenet.layers import preprocessing as pre
    from slidenet.layers import reshaping as rs

    if isinstance(layer, act.LeakyReLU):
        return _same(x, g.node("LeakyRelu", [x.name], name, alpha=layer.negative_slope))
    if isinstance(layer, act.ELU):
        return _same(x, g.node("Elu", [x.name], name, alpha=layer.alpha))
    table = [
        (act.PReLU, _prelu),
        (act.Softmax, _softmax_layer),
        (norm.LayerNormalization, _layernorm),
        (norm.GroupNormalization, _groupnorm),
        (conv.Conv2DTranspose, _conv_transpose),  # Conv1DTranspose too
        (conv.SeparableConv2D, _separable),  # before its base class DepthwiseConv2D
        (conv.DepthwiseConv2D, _depthwise),
        (rs._UpSampling, img.upsample),
        (rs._ZeroPadding, img.zero_pad),
        (rs._Cropping, img.crop),
        (pre.Rescaling, img.rescaling),
        (pre.Normalization, img.normalization),
        ((pre.Resizing, pre.CenterCrop, aug.RandomCrop), img.image_layer),
    ]
    for cls, export in table:
        if isinstance(layer, cls):
            return export(g, layer, name, x)
    if isinstance(layer, aug.RandomLayer):  # the identity at inference
        return x
    return None
