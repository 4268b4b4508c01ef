"""Padding and output-size arithmetic shared by convolution and pooling.

The one formula of the lectures: a window of extent F (dilated: F_eff = (F - 1) * dilation + 1) slid
with stride S over n inputs padded with P zeros on each side gives

    n_out = (n - F_eff + 2P) / S + 1

outputs. Padding may be asymmetric (P_before + P_after in place of 2P). 'same' padding follows
TensorFlow's rule for any stride: n_out = ceil(n / S) and the total padding
max((n_out - 1) * S + F_eff - n, 0) is split with the extra element at the end (bottom / right).
"""

from __future__ import annotations

from slidenet._validation import int_tuple

Pads = tuple[tuple[int, int], ...]


def effective_size(f: int, dilation: int = 1) -> int:
    """Extent of a dilated window: (f - 1) * dilation + 1."""
    return (f - 1) * dilation + 1


def same_pads(n: int, f: int, stride: int = 1, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow's 'same' padding (before, after) for one axis; the extra element goes after.

    >>> same_pads(28, 5)
    (2, 2)
    >>> same_pads(7, 2, stride=2)   # out = ceil(7 / 2) = 4, total = (4 - 1) * 2 + 2 - 7 = 1
    (0, 1)
    """
    n_out = -(-n // stride)
    total = max((n_out - 1) * stride + effective_size(f, dilation) - n, 0)
    return total // 2, total - total // 2


def resolve_padding(padding, in_sizes, kernel, strides, dilations, who: str = "padding") -> Pads:
    """Turn any accepted padding spec into explicit ((before, after), ...) per spatial axis.

    Args:
        padding: 'valid', 'same', an int P (all sides), a tuple with one int per axis (Ph, Pw), or a
            tuple with one (before, after) pair per axis ((top, bottom), (left, right)).
        in_sizes, kernel, strides, dilations: per-axis tuples of the same length.
        who: the name used in error messages.

    Returns:
        One (before, after) pair per spatial axis.
    """
    axes = len(in_sizes)
    if isinstance(padding, str):
        mode = padding.lower()
        if mode == "valid":
            return ((0, 0),) * axes
        if mode == "same":
            return tuple(
                same_pads(n, f, s, d)
                for n, f, s, d in zip(in_sizes, kernel, strides, dilations, strict=True)
            )
        raise ValueError(
            f"{who}: padding must be 'valid', 'same', an int or explicit pairs, got {padding!r}."
        )
    if isinstance(padding, int) and not isinstance(padding, bool):
        padding = (padding,) * axes
    try:
        items = tuple(padding)
    except TypeError:
        items = None
    if items is None or len(items) != axes:
        raise ValueError(
            f"{who}: padding {padding!r} needs one entry per spatial axis ({axes}), "
            "e.g. 2, (1, 2) or ((top, bottom), (left, right))."
        )
    pads = []
    for item in items:
        pair = (item, item) if isinstance(item, int) and not isinstance(item, bool) else item
        try:
            before, after = pair
        except (TypeError, ValueError):
            raise ValueError(f"{who}: cannot read padding {padding!r}.") from None
        for p in (before, after):
            if isinstance(p, bool) or not isinstance(p, int) or p < 0:
                raise ValueError(f"{who}: padding values must be ints >= 0, got {padding!r}.")
        pads.append((int(before), int(after)))
    return tuple(pads)


def output_length(n: int, f: int, stride: int, pads: tuple[int, int], dilation: int = 1) -> int:
    """Number of window positions along one axis, floor((n + P_b + P_a - F_eff) / S) + 1.

    Windows that would run past the padded input are dropped, as in Keras and PyTorch. Returns 0 or
    less when the window does not fit at all; callers turn that into an error.
    """
    return (n + pads[0] + pads[1] - effective_size(f, dilation)) // stride + 1


def conv_output_length(n, f, stride=1, padding=0, dilation=1) -> int:
    """The lecture formula (n - F + 2P)/S + 1, checked: raises ValueError unless it is a whole
    number.

    Args:
        n: input length; f: filter extent; stride: S; dilation: gaps between filter taps.
        padding: an int P (each side), a pair (before, after), 'valid' or 'same'.

    Returns:
        The output length.

    Raises:
        ValueError: with the arithmetic written out when the filter does not fit or does not tile.

    >>> conv_output_length(32, 5, stride=1, padding=2)
    32
    >>> conv_output_length(7, 3, stride=3)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: filter 3 with stride 3 does not tile input 7: (7 - 3)/3 + 1 = 2.33 is not a whole...
    """
    n, f, stride, dilation = (
        int_tuple(v, 1, name)[0]
        for v, name in ((n, "n"), (f, "f"), (stride, "stride"), (dilation, "dilation"))
    )
    if isinstance(padding, str):
        pads = resolve_padding(padding, (n,), (f,), (stride,), (dilation,), "conv_output_length")[0]
        if padding.lower() == "same":
            # always ceil(n / S), as conv2d gives, even where the last window skips inputs
            return output_length(n, f, stride, pads, dilation)
    elif isinstance(padding, int) and not isinstance(padding, bool):
        pads = resolve_padding(padding, (n,), (f,), (stride,), (dilation,), "conv_output_length")[0]
    else:
        try:
            pair = (tuple(padding),)
        except TypeError:
            raise ValueError(
                f"conv_output_length: padding must be an int P, a pair (before, after), 'valid' "
                f"or 'same', got {padding!r}."
            ) from None
        pads = resolve_padding(pair, (n,), (f,), (stride,), (dilation,), "conv_output_length")[0]
    fe = effective_size(f, dilation)
    span = n + pads[0] + pads[1] - fe
    f_text = f"{fe}" if dilation == 1 else f"{fe} (= ({f} - 1)*{dilation} + 1)"
    arith = formula(n, fe, stride, pads)
    if span < 0:
        raise ValueError(
            f"filter {f_text} does not fit input {n} with padding {pads}: {arith} = "
            f"{span / stride + 1:.3g} < 1. Use more padding or a smaller filter."
        )
    if span % stride:
        hint = _fitting_alternatives(n, fe, stride, pads)
        raise ValueError(
            f"filter {f_text} with stride {stride} does not tile input {n}: {arith} = "
            f"{span / stride + 1:.2f} is not a whole number.{hint}"
        )
    return span // stride + 1


def _fitting_alternatives(n: int, fe: int, stride: int, pads: tuple[int, int]) -> str:
    """Nearest strides and symmetric paddings that make (n - F + 2P)/S + 1 whole."""
    span = n + pads[0] + pads[1] - fe
    strides = sorted(s for s in range(1, 2 * stride + 2) if s != stride and span % s == 0)
    strides = sorted(sorted(strides, key=lambda s: abs(s - stride))[:2])
    parts = ["stride " + " or ".join(map(str, strides))] if strides else []
    extra = next((k for k in range(1, stride + 1) if (span + 2 * k) % stride == 0), None)
    if extra is not None:
        parts.append(f"padding {pads[0] + extra} (pads {pads[0] + extra}+{pads[1] + extra})")
    return (" Try " + ", or ".join(parts) + ".") if parts else ""


def formula(n: int, fe: int, stride: int, pads: tuple[int, int]) -> str:
    """The left side of the lecture formula with numbers, e.g. '(28 - 5 + 2*2)/1 + 1'.

    >>> formula(7, 3, 3, (0, 1))
    '(7 - 3 + 0+1)/3 + 1'
    """
    padding = "" if pads == (0, 0) else f" + {_pads_text(pads)}"
    return f"({n} - {fe}{padding})/{stride} + 1"


def _pads_text(pads: tuple[int, int]) -> str:
    return f"2*{pads[0]}" if pads[0] == pads[1] else f"{pads[0]}+{pads[1]}"


def window_math(n: int, f: int, stride: int, pads: tuple[int, int], dilation: int = 1) -> str:
    """The output-size arithmetic as text, e.g. '(28 - 5 + 2*2)/1 + 1 = 28' (used by summary)."""
    fe = effective_size(f, dilation)
    left = formula(n, fe, stride, pads)
    exact = (n + pads[0] + pads[1] - fe) / stride + 1
    out = output_length(n, f, stride, pads, dilation)
    if exact == out:
        return f"{left} = {out}"
    return f"{left} = {exact:.2f} -> {out}"


def is_tiled(n: int, f: int, stride: int, pads: tuple[int, int], dilation: int = 1) -> bool:
    """True when the windows cover the padded input exactly (nothing dropped at the end)."""
    return (n + pads[0] + pads[1] - effective_size(f, dilation)) % stride == 0
