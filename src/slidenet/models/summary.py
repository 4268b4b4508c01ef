"""model.summary(): Keras' table, plus the arithmetic of every conv and pool layer.

Under each conv or pool row, an indented line shows the output size worked out with the layer's own
numbers, e.g. ``(28 - 5 + 2*2)/1 + 1 = 28``, the receptive field of one output in input pixels, and
the multiply-adds per example; and a warning when the windows do not tile the input, so rows or
columns at the bottom/right are never looked at.
"""

from __future__ import annotations

from slidenet._validation import fmt_shape
from slidenet.layers.base import ActivationMixin
from slidenet.layers.convolutional import Conv1D, Conv2D
from slidenet.layers.core import Dense
from slidenet.layers.pooling import _Pooling1D, _Pooling2D
from slidenet.layers.residual import ResidualBlock
from slidenet.ops.kernels import backend
from slidenet.ops.shapes import effective_size, is_tiled, window_math


def human_count(n: float) -> str:
    """1234567 -> '1.2M' (k, M, G)."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return f"{n:.0f}"


def _window_params(layer):
    """(kernel, strides, dilations, pads per axis) of a conv or pool layer, 2D or 1D."""
    if isinstance(layer, Conv2D):
        kernel, strides, dil = layer.kernel_size, layer.strides, layer.dilation_rate
        pads = layer._geometry(layer._in)[0]
        pads = pads[1:] if isinstance(layer, Conv1D) else pads
    else:
        kernel, strides, dil = layer.pool_size, layer.strides, (1,) * len(layer.pool_size)
        pads = layer._geometry(layer._in)[0]
        if isinstance(layer, _Pooling1D):
            pads = pads[1:]
    return kernel, strides, dil, pads


def layer_details(layer, field, jump):
    """Detail lines for one layer and the receptive field / jump after it (per spatial axis)."""
    if isinstance(layer, ResidualBlock):
        return _residual_details(layer, field, jump)
    more = _resampling_details(layer, field, jump)
    if more is not None:
        return more
    if not isinstance(layer, Conv2D | _Pooling2D):
        return [], field, jump
    kernel, strides, dil, pads = _window_params(layer)
    sizes = layer._in[:-1]
    maths, dropped = [], []
    new_field, new_jump = [], []
    for axis, (n, f, s, d, p) in enumerate(zip(sizes, kernel, strides, dil, pads, strict=True)):
        maths.append(window_math(n, f, s, p, d))
        if not is_tiled(n, f, s, p, d):
            lost = (n + p[0] + p[1] - effective_size(f, d)) % s
            dropped.append(f"{lost} {'row' if axis == 0 and len(sizes) == 2 else 'column'}(s)")
        new_field.append(field[axis] + (effective_size(f, d) - 1) * jump[axis])
        new_jump.append(jump[axis] * s)
    ho = layer._out[:-1]
    per_position = 1
    for f in kernel:
        per_position *= f
    positions = 1
    for o in ho:
        positions *= o
    if isinstance(layer, Conv2D):
        madds = positions * layer.filters * per_position * layer._in[-1] // layer.groups
        work = f"{human_count(madds)} mult-adds"
    else:
        work = f"{human_count(positions * layer._in[-1] * per_position)} window reads"
    rf = "x".join(f"{r:g}" for r in new_field)  # fractional after an upsampling
    math_text = "; ".join(maths) if len(set(maths)) > 1 else maths[0]
    lines = [f"   out: {math_text} | receptive field {rf} | {work}"]
    if dropped:
        lines.append(
            f"   warning: windows do not tile the input; the last {' and '.join(dropped)} of "
            f"{'x'.join(map(str, sizes))} are never seen. Use padding='same' or another stride."
        )
    return lines, tuple(new_field), tuple(new_jump)


def _transpose_math(n, f, s, d, padding, output_padding, out) -> str:
    """A transposed convolution's output size as text, e.g. '(4 - 1)*2 + 3 - 1 - 1 + 1 = 8'
    (padding 'valid', 'same' or a (before, after) pair; Keras' rules, as in Conv2DTranspose)."""
    fe = effective_size(f, d)
    if padding == "same":
        text = f"{n}*{s}" if output_padding is None else f"({n} - 1)*{s} + {fe} % 2"
    else:
        text = f"({n} - 1)*{s} + {fe}"
        if padding == "valid" and output_padding is None:
            output_padding = max(s - fe, 0)
        if padding != "valid":
            text += "".join(f" - {p}" for p in padding if p)
    return f"{text}{f' + {output_padding}' if output_padding else ''} = {out}"


def _resampling_details(layer, field, jump):
    """Detail lines of the layers of issue 16 that change sizes (None for other layers):
    depthwise / separable (window arithmetic as Conv2D), transposed convolutions (Keras' output
    size), UpSampling (n*s), ZeroPadding (n + before + after) and Cropping (n - before - after).

    After an upsampling by s (or a transposed convolution of stride s) one step of the next layer
    is 1/s input pixel: the jump becomes fractional, so later receptive fields may be too.
    """
    from slidenet.layers.convolutional_more import Conv2DTranspose, DepthwiseConv2D
    from slidenet.layers.reshaping import _Cropping, _UpSampling, _ZeroPadding
    from slidenet.ops.conv import conv2d_geometry
    from slidenet.ops.conv_transpose import conv_transpose_geometry
    from slidenet.ops.shapes import resolve_padding

    sizes, out = layer._in[:-1], layer._out[:-1]
    if isinstance(layer, DepthwiseConv2D):
        pads, strides, dils, _ = conv2d_geometry(
            (1, *layer._in), layer.kernel_size, layer.strides, layer.padding, layer.dilation_rate
        )
        args = zip(sizes, layer.kernel_size, strides, pads, dils, strict=True)
        maths = [window_math(*a) for a in args]
        field = tuple(
            r + (effective_size(f, d) - 1) * j
            for r, f, d, j in zip(field, layer.kernel_size, dils, jump, strict=True)
        )
        jump = tuple(j * s for j, s in zip(jump, strides, strict=True))
        channels = layer._in[-1] * layer.depth_multiplier
        madds = out[0] * out[1] * channels * layer.kernel_size[0] * layer.kernel_size[1]
        if hasattr(layer, "pointwise_kernel"):  # SeparableConv2D: then a 1x1 convolution
            madds += out[0] * out[1] * channels * layer.filters
        extra = f" | receptive field {'x'.join(f'{r:g}' for r in field)} | "
        extra += f"{human_count(madds)} mult-adds"
    elif isinstance(layer, Conv2DTranspose):  # Conv1DTranspose too
        spec, rank = layer._padding_spec(), len(sizes)
        if isinstance(spec, str):
            pads = (spec,) * rank
        else:
            pads = resolve_padding(spec, (1,) * rank, (1,) * rank, (1,) * rank, (1,) * rank)
        geo = conv_transpose_geometry(
            tuple(sizes), layer.kernel_size, layer.strides, spec, layer.output_padding,
            layer.dilation_rate,
        )  # fmt: skip
        args = zip(
            sizes, layer.kernel_size, layer.strides, layer.dilation_rate, pads,
            layer.output_padding or (None,) * rank, geo.out, strict=True,
        )  # fmt: skip
        maths = [_transpose_math(*a) for a in args]
        field = tuple(
            r + (-(-effective_size(f, d) // s) - 1) * j
            for r, f, d, s, j in zip(
                field, layer.kernel_size, layer.dilation_rate, layer.strides, jump, strict=True
            )
        )
        jump = tuple(j / s for j, s in zip(jump, layer.strides, strict=True))
        madds = layer.kernel.size
        for n in sizes:
            madds *= n
        extra = f" | {human_count(madds)} mult-adds"
    elif isinstance(layer, _UpSampling):
        maths = [f"{n}*{s} = {n * s}" for n, s in zip(sizes, layer.size, strict=True)]
        jump = tuple(j / s for j, s in zip(jump, layer.size, strict=True))
        extra = ""
    elif isinstance(layer, _ZeroPadding | _Cropping):
        sign = "+" if isinstance(layer, _ZeroPadding) else "-"
        maths = [
            f"{n} {sign} {a} {sign} {b} = {o}"
            for n, (a, b), o in zip(sizes, layer.pairs, out, strict=True)
        ]
        extra = ""
    else:
        return None
    math_text = "; ".join(maths) if len(set(maths)) > 1 else maths[0]
    return [f"   out: {math_text}{extra}"], field, jump


def _residual_details(block, field, jump):
    """One line for a ResidualBlock: its path, receptive field and mult-adds of its convs."""
    for conv in (block.conv1, block.conv2):
        field = tuple(
            r + (f - 1) * j for r, f, j in zip(field, conv.kernel_size, jump, strict=True)
        )
        jump = tuple(j * s for j, s in zip(jump, conv.strides, strict=True))
    convs = [c for c in (block.conv1, block.conv2, block.shortcut_conv) if c is not None]
    madds = sum(
        c._out[0] * c._out[1] * c.filters * c.kernel_size[0] * c.kernel_size[1] * c._in[-1]
        for c in convs
    )
    k = "x".join(map(str, block.kernel_size))
    st = block.strides
    s = "" if st == (1, 1) else f"/{st[0]}" if st[0] == st[1] else f"/{st[0]}x{st[1]}"
    short = "identity" if block.shortcut_conv is None else f"1x1{s} conv-BN"
    lines = [
        f"   {k}{s} conv-BN-ReLU, {k} conv-BN, + {short} shortcut, ReLU | receptive field "
        f"{'x'.join(map(str, field))} | {human_count(madds)} mult-adds"
    ]
    return lines, field, jump


def _trainable_count(layer) -> int:
    """Parameters the optimizer trains (not batch norm's moving statistics)."""
    from slidenet.models.saving import _trainable_mask

    return sum(w.size for w, t in zip(layer.weights, _trainable_mask(layer), strict=True) if t)


def summary_text(model, line_length=None) -> str:
    """The summary of a Sequential model as text."""
    width = line_length or 80
    cols = [int(width * 0.42), int(width * 0.32), width - int(width * 0.42) - int(width * 0.32)]
    rule = "_" * width

    def row(a, b, c):
        return f" {a:<{cols[0] - 1}}{b:<{cols[1]}}{c:>{cols[2] - 1}}"

    lines = [
        f'Model: "{model.name}"',
        rule,
        row("Layer (type)", "Output Shape", "Param #"),
        "=" * width,
    ]
    built = model.built
    spatial = len(model._input_shape) - 1 if built and model._input_shape else 0
    field, jump = (1,) * spatial, (1,) * spatial
    total = trainable = 0
    for i, layer in enumerate(model.layers):
        name = f"{layer.name} ({type(layer).__name__})"
        if not layer.built:
            lines.append(row(name, "(unbuilt)", "?"))
            continue
        params = layer.count_params()
        act = getattr(layer, "activation", "linear") if isinstance(layer, ActivationMixin) else ""
        if act and act != "linear" and not type(layer).__name__.startswith(("Activation", "ReLU")):
            name = f"{layer.name} ({type(layer).__name__}, {act})"
        lines.append(row(name, fmt_shape(layer.output_shape), f"{params:,}"))
        if spatial and len(layer._in) - 1 == spatial:
            detail, field, jump = layer_details(layer, field, jump)
            lines.extend(detail)
        elif isinstance(layer, Dense):
            lines.append(f"   {human_count(layer.kernel.size)} mult-adds")
        total += params
        trainable += _trainable_count(layer)
        if i < len(model.layers) - 1:
            lines.append("")
    lines += [
        "=" * width,
        f"Total params: {total:,}",
        f"Trainable params: {trainable:,}",
        f"Non-trainable params: {total - trainable:,}",
        f"Kernels: {backend()} (slidenet.ops.backend(); SLIDENET_KERNELS=numpy forces NumPy)",
        rule,
    ]
    if not built:
        lines.append("The model is not built: give the first layer input_shape=... to see shapes.")
    return "\n".join(lines)
