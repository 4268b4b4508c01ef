"""The teaching view: the arithmetic of convolution and pooling written out, and the sliding window.

Pure functions that return text (``explain_conv``, ``explain_pool``, ``explain_model``);
``parse_kernel`` reads the kernel specs that ``slidenet explain`` and ``slidenet filter`` accept.

The one formula: a window of extent F slid with stride S over n inputs padded with P on each
side gives ``n_out = (n - F + 2P)/S + 1`` outputs. When that is not a whole number the windows do
not tile the input; Keras and PyTorch then drop the last rows/columns, and ``explain_conv`` lists
the nearest strides and paddings that do tile.

>>> text = explain_conv((32, 32, 3), filters=10, kernel=5, stride=1, padding=2)
>>> "(32 - 5 + 2*2)/1 + 1 = 32" in text and "32x32x10" in text
True
>>> parse_kernel("box:2")
array([[0.25, 0.25],
       [0.25, 0.25]])
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from slidenet._validation import unknown_name
from slidenet.models.summary import human_count
from slidenet.ops.shapes import (
    effective_size,
    formula,
    output_length,
    resolve_padding,
    window_math,
)

__all__ = ["KERNEL_NAMES", "explain_conv", "explain_model", "explain_pool", "parse_kernel"]

#: Kernel spec names and their forms, for help texts and errors.
KERNEL_NAMES = {
    "gaussian": "gaussian:SIZE:SIGMA",
    "box": "box:SIZE",
    "sharpen": "sharpen[:SIZE]",
    "identity": "identity[:SIZE]",
    "shift": "shift:DY:DX[:SIZE]",
    "sobel-x": "sobel-x",
    "sobel-y": "sobel-y",
    "laplacian": "laplacian",
}


# ----- kernel specs ------------------------------------------------------------------------------
def parse_kernel(spec) -> np.ndarray:
    """A (Fh, Fw) float64 kernel from a spec: ``gaussian:5:1.2``, ``box:3``, ``sharpen``,
    ``identity``, ``shift:0:1``, ``sobel-x``, ``sobel-y``, ``laplacian``, or the path of a text
    file of whitespace-separated rows (read with ``np.loadtxt``).

    Raises:
        ValueError: one line saying what is wrong and what is accepted.
    """
    from slidenet import filters

    if isinstance(spec, np.ndarray):
        return _check_2d(np.asarray(spec, dtype=np.float64), "kernel")
    spec = str(spec).strip()
    name, *params = spec.split(":")
    key = name.lower().replace("_", "-")
    if key not in KERNEL_NAMES:
        path = Path(spec)
        if path.is_file():
            return _load_kernel_file(path)
        if ":" not in spec and (path.suffix or "/" in spec or "\\" in spec):
            raise ValueError(f"kernel file {spec!r} does not exist")
        err = unknown_name("kernel", name, KERNEL_NAMES)
        raise ValueError(f"{err} Or give a text file of whitespace-separated rows of weights.")
    form = KERNEL_NAMES[key]
    arity = {"gaussian": (2, 2), "box": (1, 1), "sharpen": (0, 1), "identity": (0, 1)}
    arity |= {"shift": (2, 3), "sobel-x": (0, 0), "sobel-y": (0, 0), "laplacian": (0, 0)}
    lo, hi = arity[key]
    if not lo <= len(params) <= hi:
        raise ValueError(f"kernel {spec!r}: expected {form}, e.g. {_example(key)}")
    try:
        nums = [float(p) if key == "gaussian" and i == 1 else int(p) for i, p in enumerate(params)]
    except ValueError:
        raise ValueError(
            f"kernel {spec!r}: expected {form} with numbers, e.g. {_example(key)}"
        ) from None
    makers = {
        "gaussian": filters.gaussian,
        "box": filters.box,
        "sharpen": filters.sharpen,
        "identity": filters.identity,
        "shift": filters.shift,
        "sobel-x": filters.sobel_x,
        "sobel-y": filters.sobel_y,
        "laplacian": filters.laplacian,
    }
    try:
        return np.asarray(makers[key](*nums), dtype=np.float64)
    except ValueError as err:
        raise ValueError(f"kernel {spec!r}: {err}") from None


def _example(key: str) -> str:
    return {"gaussian": "gaussian:5:1.2", "box": "box:3", "shift": "shift:0:1"}.get(key, key)


def _load_kernel_file(path: Path) -> np.ndarray:
    try:
        k = np.loadtxt(path, ndmin=2, dtype=np.float64)
    except (ValueError, OSError) as err:
        msg = " ".join(str(err).split())
        raise ValueError(
            f"cannot read kernel file {str(path)!r} (whitespace-separated rows of numbers): {msg}"
        ) from None
    return _check_2d(k, f"kernel file {str(path)!r}")


def _check_2d(k: np.ndarray, what: str) -> np.ndarray:
    if k.ndim != 2 or k.size == 0:
        raise ValueError(f"{what} must be a non-empty 2D grid of weights, got shape {k.shape}")
    if not np.isfinite(k).all():
        raise ValueError(f"{what} contains NaN or Inf")
    return k


# ----- arithmetic --------------------------------------------------------------------------------
def _pair(value, what: str) -> tuple[int, int]:
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        value = (int(value), int(value))
    try:
        a, b = (int(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be an int or a pair of ints, got {value!r}") from None
    if a < 1 or b < 1:
        raise ValueError(f"{what} must be positive, got {value!r}")
    return a, b


def _shape3(input_shape) -> tuple[int, int, int]:
    shape = tuple(int(s) for s in input_shape)
    if len(shape) == 2:
        shape = (*shape, 1)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"input shape must be (H, W, D) with positive sizes, got {input_shape!r}")
    return shape


def _human(n: float) -> str:
    """1234567 -> '1,234,567 (1.2M)'."""
    return f"{n:,.0f} ({human_count(n)})" if n >= 1e3 else f"{n:,.0f}"


def _alternatives(n: int, fe: int, stride: int, pads: tuple[int, int]) -> list[str]:
    """The nearest strides and symmetric paddings for which (n - F + 2P)/S + 1 is whole."""
    span = n + pads[0] + pads[1] - fe
    out = []
    if span >= 0:
        strides = [s for s in range(1, max(2 * stride + 2, 4)) if s != stride and span % s == 0]
        for s in sorted(sorted(strides, key=lambda s: (abs(s - stride), s))[:2]):
            out.append(f"stride {s}: {formula(n, fe, s, pads)} = {span // s + 1}")
    base = pads[0] if pads[0] == pads[1] else max(pads)
    found = 0
    for p in range(base + 1, base + 2 * stride + fe + 1):
        span_p = n + 2 * p - fe
        if span_p >= 0 and span_p % stride == 0:
            out.append(f"padding {p}: {formula(n, fe, stride, (p, p))} = {span_p // stride + 1}")
            found += 1
            break
    for p in range(base - 1, -1, -1):
        span_p = n + 2 * p - fe
        if span_p >= 0 and span_p % stride == 0:
            out.append(f"padding {p}: {formula(n, fe, stride, (p, p))} = {span_p // stride + 1}")
            break
    return out


def _axes_text(sizes, kernel, strides, pads, dilations) -> tuple[list[str], list[int], bool]:
    """Lines of per-axis arithmetic, the output sizes, and whether everything tiles and fits."""
    lines, outs, ok = [], [], True
    axes = zip(("height", "width"), sizes, kernel, strides, pads, dilations, strict=True)
    for label, n, f, s, p, d in axes:
        fe = effective_size(f, d)
        span = n + p[0] + p[1] - fe
        if span < 0:
            ok = False
            exact = span / s + 1
            lines.append(
                f"  {label + ':':<7} {formula(n, fe, s, p)} = {exact:.2f} < 1: the {fe}-wide "
                f"window does not fit {n} inputs padded by {p[0]}+{p[1]}"
            )
            outs.append(0)
        else:
            lines.append(f"  {label + ':':<7} {window_math(n, f, s, p, d)}")
            outs.append(output_length(n, f, s, p, d))
            if span % s:
                ok = False
                lost = span % s
                lines.append(
                    f"           not a whole number: the windows do not tile the input; Keras and "
                    f"PyTorch keep {outs[-1]} and the last {lost} "
                    f"{'row' if label == 'height' else 'column'}(s) are never seen"
                )
        if span < 0 or span % s:
            alts = _alternatives(n, fe, s, p)
            if alts:
                lines.append("           fits with " + "; or ".join(alts))
    return lines, outs, ok


def _window_header(kind, shape, kernel, strides, pads, dilations, padding) -> list[str]:
    H, W, D = shape
    ktxt = f"{kernel[0]}x{kernel[1]}"
    stxt = str(strides[0]) if strides[0] == strides[1] else f"{strides[0]}x{strides[1]}"
    if isinstance(padding, str):
        ptxt = f"'{padding.lower()}' = " + ", ".join(f"{a}+{b}" for a, b in pads)
    elif pads[0] == pads[1] and pads[0][0] == pads[0][1]:
        ptxt = str(pads[0][0])
    else:
        ptxt = ", ".join(f"{a}+{b}" for a, b in pads)
    dtxt = "" if dilations == (1, 1) else f", dilation {dilations[0]}x{dilations[1]}"
    return [f"{kind}: input {H}x{W}x{D}, window {ktxt}, stride {stxt}, padding {ptxt}{dtxt}"]


def explain_conv(input_shape, filters, kernel, stride=1, padding=0, dilation=1) -> str:
    """The arithmetic of a convolution layer as text.

    Args:
        input_shape: (H, W, D) (or (H, W), taken as D = 1).
        filters: K, the number of filters (output depth).
        kernel: F or (Fh, Fw). stride: S or (Sh, Sw). dilation: int or pair.
        padding: P (each side), (Ph, Pw), ((top, bottom), (left, right)), 'valid' or 'same'.

    Returns:
        Lines with the output volume and its formula per axis, the parameters (F*F*D + 1)*K, the
        multiply-adds, the receptive field; when the windows do not fit or tile, the arithmetic
        (e.g. ``(7 - 3)/3 + 1 = 2.33``) and the nearest strides and paddings that do.
    """
    H, W, D = _shape3(input_shape)
    K = int(filters)
    if K < 1:
        raise ValueError(f"filters must be a positive integer, got {filters!r}")
    kernel, strides = _pair(kernel, "kernel"), _pair(stride, "stride")
    dilations = _pair(dilation, "dilation")
    pads = resolve_padding(padding, (H, W), kernel, strides, dilations, "explain_conv")
    lines = _window_header("Convolution", (H, W, D), kernel, strides, pads, dilations, padding)
    lines[0] = lines[0].replace("window", f"{K} filter(s) of")
    lines[0] = lines[0].replace(f"of {kernel[0]}x{kernel[1]}", f"of {kernel[0]}x{kernel[1]}x{D}")
    lines.append("Output size per axis: n_out = (n - F + 2P)/S + 1")
    axis_lines, outs, ok = _axes_text((H, W), kernel, strides, pads, dilations)
    lines += axis_lines
    Fh, Fw = kernel
    weights = Fh * Fw * D * K
    f_form = "F*F*D" if Fh == Fw else "Fh*Fw*D"
    lines.append(
        f"Parameters: ({f_form} + 1)*K = ({Fh}*{Fw}*{D} + 1)*{K} = {weights + K:,} "
        f"({weights:,} weights + {K} bias{'es' if K > 1 else ''})"
    )
    fe = (effective_size(Fh, dilations[0]), effective_size(Fw, dilations[1]))
    if min(outs) < 1:
        lines.append("Output volume: none, the filter does not fit (see above)")
        return "\n".join(lines)
    Ho, Wo = outs
    lines.insert(
        2 + len(axis_lines),
        f"Output volume: {Ho}x{Wo}x{K} (one {Ho}x{Wo} activation map per filter)"
        + ("" if ok else " after dropping what does not tile"),
    )
    madds = Ho * Wo * K * Fh * Fw * D
    lines.append(
        f"Multiply-adds: {Ho}*{Wo} positions * {K} filters * {Fh}*{Fw}*{D} = {_human(madds)} "
        "per image"
    )
    lines.append(
        f"Receptive field: {fe[0]}x{fe[1]}: each output number is the dot product of one filter "
        f"with a {fe[0]}x{fe[1]}x{D} block of the input, plus its bias"
    )
    return "\n".join(lines)


def explain_pool(input_shape, pool_size=2, stride=None, padding=0, kind="max") -> str:
    """The arithmetic of a pooling layer as text (output size per axis, 0 parameters, reads).

    Args:
        input_shape: (H, W, D) or (H, W). pool_size: F or (Fh, Fw). stride: default pool_size.
        padding: as ``explain_conv``. kind: "max", "average" or "sum" (only named in the text).
    """
    H, W, D = _shape3(input_shape)
    kernel = _pair(pool_size, "pool_size")
    strides = kernel if stride is None else _pair(stride, "stride")
    pads = resolve_padding(padding, (H, W), kernel, strides, (1, 1), "explain_pool")
    lines = _window_header(
        f"{kind.capitalize()} pooling", (H, W, D), kernel, strides, pads, (1, 1), padding
    )
    lines.append("Output size per axis: n_out = (n - F + 2P)/S + 1")
    axis_lines, outs, ok = _axes_text((H, W), kernel, strides, pads, (1, 1))
    lines += axis_lines
    if min(outs) < 1:
        lines.append("Output volume: none, the window does not fit (see above)")
        return "\n".join(lines)
    Ho, Wo = outs
    lines.insert(
        2 + len(axis_lines),
        f"Output volume: {Ho}x{Wo}x{D} (each of the {D} channels is pooled on its own)"
        + ("" if ok else " after dropping what does not tile"),
    )
    lines.append("Parameters: 0 (pooling has no weights)")
    reads = Ho * Wo * D * kernel[0] * kernel[1]
    lines.append(
        f"Window reads: {Ho}*{Wo} positions * {D} channels * {kernel[0]}*{kernel[1]} = "
        f"{_human(reads)} per image"
    )
    lines.append(f"Receptive field: {kernel[0]}x{kernel[1]} of its input per output number")
    return "\n".join(lines)


def explain_model(model) -> str:
    """Walk a built Sequential or graph Model layer by layer: shapes, parameter formulas,
    output-size arithmetic (from ``model.summary``), receptive field and multiply-adds (for a
    graph, each layer's inputs and its own window instead of the receptive field)."""
    from slidenet.layers.convolutional import Conv2D
    from slidenet.layers.core import Dense
    from slidenet.models.graph import layer_calls
    from slidenet.models.summary import layer_details

    if not model.built:
        raise ValueError("the model is not built: give its first layer input_shape=...")
    lines = [f'Model "{model.name}": input {_fmt(model.input_shape[1:])}']
    spatial = len(model.input_shape) - 2
    field, jump = (1,) * spatial, (1,) * spatial
    total = 0
    graph = hasattr(model, "inputs") and model.inputs  # a functional Model
    for i, layer in enumerate(model.layers, 1):
        params = layer.count_params()
        total += params
        lines.append(
            f"{i}. {layer.name} ({type(layer).__name__}): {_fmt(layer._in)} -> {_fmt(layer._out)}"
        )
        if graph:
            froms = [
                " + ".join(t.node.layer.name for t in node.inputs)
                for node in layer_calls(layer)
                if node.inputs
            ]
            lines += [f"   from: {f}" for f in froms]
        if isinstance(layer, Conv2D):
            k = layer.kernel_size
            D, K = layer._in[-1] // layer.groups, layer.filters
            ks = "*".join(map(str, k))
            bias = " + 1" if layer.use_bias else ""
            lines.append(
                f"   params: ({ks}*{D}{bias})*{K} = {params:,}  ({K} filters of "
                f"{'x'.join(map(str, k))}x{D})"
            )
        elif isinstance(layer, Dense):
            n_in, units = layer.kernel.shape
            bias = " + 1" if layer.use_bias else ""
            lines.append(f"   params: ({n_in}{bias})*{units} = {params:,}")
            lines.append(f"   {n_in}*{units} = {_human(n_in * units)} mult-adds")
        elif type(layer).__name__ == "Flatten":
            lines.append(f"   {'*'.join(map(str, layer._in))} = {int(np.prod(layer._in)):,} values")
        elif params:
            lines.append(f"   params: {params:,}")
        if spatial and _is_shape(layer._in) and len(layer._in) - 1 == spatial:
            if graph:  # a receptive field differs from path to path: each layer's own window
                detail, _, _ = layer_details(layer, (1,) * spatial, (1,) * spatial)
                detail = [d.replace("receptive field", "window") for d in detail]
            else:
                detail, field, jump = layer_details(layer, field, jump)
            lines += detail
    lines.append(f"Total params: {total:,}")
    return "\n".join(lines)


def _fmt(shape) -> str:
    if shape and not _is_shape(shape):  # a merge layer's inputs
        return " & ".join(_fmt(s) for s in shape)
    return "x".join(str(s) for s in shape)


def _is_shape(shape) -> bool:
    return isinstance(shape, tuple) and all(isinstance(s, int) for s in shape)
